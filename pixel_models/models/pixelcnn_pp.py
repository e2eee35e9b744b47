"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma 2017, "PixelCNN++: Improving
the PixelCNN with Discretized Logistic Mixture Likelihood and Other
Modifications"), after the reference code, openai/pixel-cnn
`pixel_cnn_pp/model.py`.

Shifted convolutions (`pixel_models.layers.shifted_conv`) replace masks, in
two streams: `u` sees the rows above, `ul` the rows above and the pixels to
the left, so the network's output at a pixel sees every earlier pixel in
raster order (no blind spot) and nothing of its own pixel. The image, scaled
to [-1, 1] and given a channel of ones that tells it from the zero padding,
starts both streams. Up pass: at each of `num_scales` resolutions,
`num_resnets` gated ResNet blocks per stream (ul's also reading u at the
same pixel), then a stride-2 shifted conv halving the size (except after the
last); every output is kept. Down pass: the same in reverse, doubling the
size by stride-2 transposed shifted convs, each block reading the matching
up-pass output as a short-cut (u: the u output; ul: u and the ul output), and
`num_resnets + 1` blocks at every resolution but the lowest (one per kept
output). Then ELU and a 1x1 conv to the parameters of a discretized logistic
mixture, which orders R -> G -> B within a pixel by its linear coefficients
on the earlier colours (`pixel_models.distributions`).

The paper's CIFAR-10 model (the defaults): 3 resolutions (32, 16, 8), 5
blocks per resolution and stream, 160 filters, 10 mixture components,
dropout 0.5; 2.92 bits/dim.

Sampling: `fast_stepper` caches every layer's input and computes a row of
the u stream per image row and one position of the ul stream per pixel, at
every resolution (`pixel_models.sampling.fast_pixelcnn_pp`).

Conditioning: `cond` adds a bias to the pre-activations of each block's gate
(the reference's `h`): int labels `[B]` (h one-hot, a learned `V h`) or a
float embedding `[B, D]` (`V h + b`), from `pixel_models.layers.conditioning`.

Left out: weight normalisation and its data-dependent initialisation (here
plain LeCun-normal weights and zero biases; the reference also scales each
block's second conv to outputs of std 0.1 at initialisation), Polyak
averaging (a trainer matter), and the energy-distance variant.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import DiscretizedLogisticMixture
from pixel_models.layers.conditioning import condition_bias
from pixel_models.layers.pixel_io import scale_pixels
from pixel_models.layers.shifted_conv import (
    DownRightShiftedConv,
    DownRightShiftedConvTranspose,
    DownShiftedConv,
    DownShiftedConvTranspose,
    down_shift,
    right_shift,
)
from pixel_models.sampling import Stepper


def network_input(x: jnp.ndarray, num_levels: int) -> jnp.ndarray:
    """Images `x[B, H, W, C]` -> `[B, H, W, C + 1]`: scaled to [-1, 1], and a
    channel of ones that tells the image from the convolutions' zero padding."""
    image = scale_pixels(x, num_levels)
    return jnp.concatenate([image, jnp.ones_like(image[..., :1])], axis=-1)


def concat_elu(x: jnp.ndarray) -> jnp.ndarray:
    """`x[..., F]` -> `elu([x, -x])`, `[..., 2F]`."""
    return nn.elu(jnp.concatenate([x, -x], axis=-1))


def _whole_map(conv: nn.Module, z: jnp.ndarray) -> jnp.ndarray:
    return conv(z)


class GatedResnet(nn.Module):
    """The paper's gated ResNet block: `x[B, H, W, F]` -> `x + a * sigmoid(b)`,
    same shape, with

        c = conv(concat_elu(x)) + nin(concat_elu(aux))
        [a | b] = conv(dropout(concat_elu(c))) + cond_bias

    `aux[B, H, W, Fa]` (the short-cut from the other stream or the up pass) or
    None; `cond_bias[B, 2F]` or None. Dropout is active only with `train`
    (rng collection "dropout").

    `convolve(conv, z)` evaluates each of the two convolutions (`conv`, the
    bound layer) on its input `z`; by default `conv(z)`, on the whole map.
    The fast sampler (`pixel_models.sampling.fast_pixelcnn_pp`) passes `x`,
    `aux` and `z` at a few positions only, and a `convolve` that computes the
    convolution there from the cached neighbours.

    Attributes:
      conv: `DownShiftedConv` (u stream) or `DownRightShiftedConv` (ul stream).
      dropout_rate: probability of dropping a unit of the hidden maps.
      dtype: compute dtype (parameters stay float32).
    """

    conv: type[nn.Module]
    dropout_rate: float
    dtype: Any = None

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        aux: jnp.ndarray | None = None,
        cond_bias: jnp.ndarray | None = None,
        train: bool = False,
        convolve: Callable[[nn.Module, jnp.ndarray], jnp.ndarray] = _whole_map,
    ) -> jnp.ndarray:
        features = x.shape[-1]
        c = convolve(self.conv(features, dtype=self.dtype), concat_elu(x))
        if aux is not None:
            c = c + nn.Dense(features, dtype=self.dtype)(concat_elu(aux))
        c = nn.Dropout(self.dropout_rate, deterministic=not train)(concat_elu(c))
        c = convolve(self.conv(2 * features, dtype=self.dtype), c)
        if cond_bias is not None:
            c = c + cond_bias[:, None, None, :]
        a, b = jnp.split(c, 2, axis=-1)
        return x + a * jax.nn.sigmoid(b)


class PixelCNNPP(nn.Module):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> discretized logistic
    mixture parameters `[B, H, W, P]` (float32), P =
    `distribution.num_params(C)`; the parameters at pixel (i, j) depend only
    on the pixels before it in raster order.

    H and W must be multiples of `2 ** (num_scales - 1)`.

    `cond`: None (needs `num_classes` = 0); int labels `[B]` (needs
    `num_classes` > 0); or a float embedding `[B, D]`. Labels outside
    `[0, num_classes)` raise a ValueError when their values are known; under
    `jit` they give NaN parameters. `train=True` turns dropout on; it then
    needs `rngs={"dropout": key}`.

    Attributes:
      num_levels: K, values per subpixel.
      hidden_dim: feature maps of both streams (the paper's nr_filters).
      num_resnets: gated ResNet blocks per resolution and stream in the up
        pass (the down pass has one more, except at the lowest resolution).
      num_scales: resolutions, each half the previous one's height and width.
      num_mixtures: logistic components of the output mixture.
      dropout_rate: dropout in every gated ResNet block, when training.
      num_classes: classes of the labels `cond` may give; 0: no class table.
      dtype: compute dtype (parameters stay float32; the output is float32).
    """

    num_levels: int
    hidden_dim: int = 160
    num_resnets: int = 5
    num_scales: int = 3
    num_mixtures: int = 10
    dropout_rate: float = 0.5
    num_classes: int = 0
    dtype: Any = None

    @property
    def distribution(self) -> DiscretizedLogisticMixture:
        """The output distribution `__call__` returns the parameters of."""
        return DiscretizedLogisticMixture(self.num_mixtures, self.num_levels)

    @property
    def num_blocks(self) -> int:
        """Gated ResNet blocks in both streams and both passes."""
        per_stream = 2 * self.num_scales * self.num_resnets + self.num_scales - 1
        return 2 * per_stream

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        self._check_shape(x.shape)
        batch, _, _, num_colors = x.shape
        biases = self.block_biases(cond, batch)

        def block(index: int, z: jnp.ndarray, aux: jnp.ndarray | None) -> jnp.ndarray:
            return self.block(index)(z, aux, biases[index], train)

        image = network_input(x, self.num_levels)
        u_conv, ul_above, ul_left = self.input_convs()
        us = [down_shift(u_conv(image))]
        uls = [down_shift(ul_above(image)) + right_shift(ul_left(image))]
        up_pairs, down_pairs = self.block_pairs()
        for scale, pairs in enumerate(up_pairs):
            if scale:
                u_conv, ul_conv = self.downsampling(scale)
                us.append(u_conv(us[-1]))
                uls.append(ul_conv(uls[-1]))
            for pair in pairs:
                us.append(block(2 * pair, us[-1], None))
                uls.append(block(2 * pair + 1, uls[-1], us[-1]))

        u, ul = us.pop(), uls.pop()
        for depth, pairs in enumerate(down_pairs):
            if depth:
                u_conv, ul_conv = self.upsampling(self.num_scales - 1 - depth)
                u, ul = u_conv(u), ul_conv(ul)
            for pair in pairs:
                u = block(2 * pair, u, us.pop())
                ul = block(2 * pair + 1, ul, jnp.concatenate([u, uls.pop()], axis=-1))

        return self.head(num_colors)(nn.elu(ul)).astype(jnp.float32)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The fast sampler's `Stepper` (`pixel_models.sampling.fast_pixelcnn_pp`):
        cached activations; per row the u stream, per pixel the ul stream."""
        from pixel_models.sampling.fast_pixelcnn_pp import fast_stepper  # imports this module

        return fast_stepper(self, variables, cond)

    @nn.nowrap
    def block_pairs(self) -> tuple[list[list[int]], list[list[int]]]:
        """The gated ResNet blocks, by pair `p` (u block `2p`, ul block `2p + 1`,
        `block`), in the order they run: the up pass's per resolution from
        the finest, the down pass's per resolution from the coarsest."""
        pairs = iter(range(self.num_blocks // 2))
        up = [[next(pairs) for _ in range(self.num_resnets)] for _ in range(self.num_scales)]
        down = [
            [next(pairs) for _ in range(self.num_resnets + (depth > 0))]
            for depth in range(self.num_scales)
        ]
        return up, down

    @nn.nowrap
    def block_biases(self, cond, batch: int) -> list[jnp.ndarray | None]:
        """`cond`'s bias for each gated ResNet block, `[batch, 2F]` (all None
        for `cond=None`). Its table or Dense layer (`condition_bias`) belongs
        to the module whose compact method calls it (the model, in `__call__`)."""
        features = self.num_blocks * 2 * self.hidden_dim
        biases = condition_bias(cond, batch, features, self.num_classes, self.dtype)
        if biases is None:
            return [None] * self.num_blocks
        return jnp.split(biases, self.num_blocks, axis=-1)

    # Factories of the layers: inside `__call__` they make its submodules;
    # outside (`nn.nowrap`) unbound layers of the same names, which the fast
    # sampler binds to their parameters. The names are those Flax gave the
    # layers when `__call__` numbered them in order (checkpoints keep loading).

    @nn.nowrap
    def input_convs(self) -> tuple[DownShiftedConv, DownShiftedConv, DownRightShiftedConv]:
        """The first convolutions on the image: the u stream's, and the ul
        stream's from above and from the left."""
        f, dtype = self.hidden_dim, self.dtype
        return (
            DownShiftedConv(f, (2, 3), dtype=dtype, name="DownShiftedConv_0"),
            DownShiftedConv(f, (1, 3), dtype=dtype, name="DownShiftedConv_1"),
            DownRightShiftedConv(f, (2, 1), dtype=dtype, name="DownRightShiftedConv_0"),
        )

    @nn.nowrap
    def downsampling(self, scale: int) -> tuple[DownShiftedConv, DownRightShiftedConv]:
        """The strided convolutions (u, ul) from resolution `scale - 1` to `scale`."""
        f, dtype = self.hidden_dim, self.dtype
        return (
            DownShiftedConv(f, strides=(2, 2), dtype=dtype, name=f"DownShiftedConv_{scale + 1}"),
            DownRightShiftedConv(
                f, strides=(2, 2), dtype=dtype, name=f"DownRightShiftedConv_{scale}"
            ),
        )

    @nn.nowrap
    def upsampling(
        self, scale: int
    ) -> tuple[DownShiftedConvTranspose, DownRightShiftedConvTranspose]:
        """The transposed convolutions (u, ul) from resolution `scale + 1` to `scale`."""
        f, dtype, index = self.hidden_dim, self.dtype, self.num_scales - 2 - scale
        return (
            DownShiftedConvTranspose(f, dtype=dtype, name=f"DownShiftedConvTranspose_{index}"),
            DownRightShiftedConvTranspose(
                f, dtype=dtype, name=f"DownRightShiftedConvTranspose_{index}"
            ),
        )

    @nn.nowrap
    def block(self, index: int) -> GatedResnet:
        """Gated ResNet block `index`: of the u stream when even, of the ul stream when odd."""
        conv = DownRightShiftedConv if index % 2 else DownShiftedConv
        return GatedResnet(conv, self.dropout_rate, self.dtype, name=f"GatedResnet_{index}")

    @nn.nowrap
    def head(self, num_colors: int) -> nn.Dense:
        """The 1x1 convolution from the ul stream (after an ELU) to the mixture's parameters."""
        num_params = self.distribution.num_params(num_colors)
        return nn.Dense(num_params, dtype=self.dtype, name="Dense_0")

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        for name in ("num_scales", "num_resnets"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if len(shape) != 4:
            raise ValueError(f"x must be images [B, H, W, C], got shape {shape}")
        factor = 2 ** (self.num_scales - 1)
        height, width = shape[1:3]
        if height % factor or width % factor:
            raise ValueError(
                f"PixelCNNPP with num_scales={self.num_scales} halves the image "
                f"{self.num_scales - 1} times: height and width must be multiples of "
                f"{factor}, got {height}x{width} (pad the images or lower num_scales)"
            )
