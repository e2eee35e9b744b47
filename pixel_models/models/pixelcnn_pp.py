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

Fast sampling (`pixelcnn_pp_stepper`; Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models", which treat this model): the input of
every convolution is cached, and a step computes only what the pixels drawn
so far complete.

The schedule follows from the windows of the shifted convolutions (plain,
strided and transposed; `pixel_models.layers.shifted_conv`). At resolution s
(maps of `H / 2^s x W / 2^s`), the u stream at row r sees only the image rows
above `2^s r`, and the ul stream at `(r, c)` only the pixels before
`(2^s r, 2^s c)` in raster order. So at pixel `(i, j)`, resolution s works at
`(i >> s, j >> s)`:

* before a row's first step (`Stepper.start_row`): the u stream's row
  `i >> s` of every resolution, up pass then down pass;
* at every pixel: the ul stream at `(i >> s, j >> s)` of every resolution, up
  pass then down pass, then the output layer at `(i, j)`.

Between multiples of `2^s` this recomputes a position already done, to the
same value (its inputs were final): a step does one position per resolution
and stream (one row at a row's start) in every layer, with no branch per
resolution. The parameters at `(i, j)` come out of the same layers, on the
same inputs, as in the full forward pass.

Caches, each a full-size map with a zero border (`_BORDER`), written in place:
for every gated block, `concat_elu` of its input and of its hidden maps (the
inputs of its two convolutions); for every strided convolution, its input
(the last map of the resolution above); for every transposed one, its input
(the last map of the resolution below) spread out by `dilate`; and the output
of every u block, which the ul blocks read at their own position. The image is
read from `x` at each step.

Conditioning: `cond` adds a bias to the pre-activations of each block's gate
(the reference's `h`): int labels `[B]` (h one-hot, a learned `V h`) or a
float embedding `[B, D]` (`V h + b`), from `pixel_models.layers.conditioning`.

Left out: weight normalisation and its data-dependent initialisation (here
plain LeCun-normal weights and zero biases; the reference also scales each
block's second conv to outputs of std 0.1 at initialisation), Polyak
averaging (a trainer matter), and the energy-distance variant.
"""

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import DiscretizedLogisticMixture
from pixel_models.interface import PixelModel, Stepper, bind
from pixel_models.layers.conditioning import condition_bias
from pixel_models.layers.pixel_io import scale_pixels
from pixel_models.layers.shifted_conv import (
    DownRightShiftedConv,
    DownRightShiftedConvTranspose,
    DownShiftedConv,
    DownShiftedConvTranspose,
    dilate,
    down_shift,
    right_shift,
)


def network_input(x: jnp.ndarray, num_levels: int) -> jnp.ndarray:
    """Images `x[B, H, W, C]` -> `[B, H, W, C + 1]`: scaled to [-1, 1], and a
    channel of ones that tells the image from the convolutions' zero padding."""
    image = scale_pixels(x, num_levels)
    return jnp.concatenate([image, jnp.ones_like(image[..., :1])], axis=-1)


def concat_elu(x: jnp.ndarray) -> jnp.ndarray:
    """`x[..., F]` -> `elu([x, -x])`, `[..., 2F]`."""
    return jnp.concatenate([nn.elu(x), nn.elu(-x)], axis=-1)


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
    The fast sampler (`pixelcnn_pp_stepper`) passes `x`,
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


class PixelCNNPP(PixelModel):
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

    CPU_CHUNK_PIXELS: ClassVar[int] = 8_192  # 8 MNIST or CIFAR-10 images (docs/benchmarks.md)

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
        """The fast sampler's `Stepper` (`pixelcnn_pp_stepper`): cached
        activations; per row the u stream, per pixel the ul stream."""
        return pixelcnn_pp_stepper(self, variables, cond)

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


# Zero rows above and columns either side of every cached map: the windows of
# the model's kernels ((2, 3) and (2, 2) wide at most, strides 1 and 2) reach
# one row above and one column past either side.
_BORDER = 1

Position = tuple[jnp.ndarray, jnp.ndarray]
# Outputs at rows start[0] .. start[0] + size[0] - 1, columns start[1] .. (alike).
Region = tuple[Position, tuple[int, int]]


def _blank(batch: int, size: tuple[int, int], features: int, dtype) -> jnp.ndarray:
    """An empty cache for a map `[batch, *size, features]`: `[batch, 1 + H, 2 + W, features]`."""
    height, width = size
    return jnp.zeros((batch, _BORDER + height, 2 * _BORDER + width, features), dtype)


def _write(cache: jnp.ndarray, values: jnp.ndarray, start: Position) -> jnp.ndarray:
    """`cache` with `values[B, h, w, F]` at map position `start`."""
    index = (0, _BORDER + start[0], _BORDER + start[1], 0)
    return jax.lax.dynamic_update_slice(cache, values.astype(cache.dtype), index)


def _read(cache: jnp.ndarray, region: Region) -> jnp.ndarray:
    """The map in `cache` on `region` (may reach into the border), `[B, h, w, F]`."""
    (row, col), (height, width) = region
    size = (cache.shape[0], height, width, cache.shape[-1])
    return jax.lax.dynamic_slice(cache, (0, _BORDER + row, _BORDER + col, 0), size)


class _CachedConvolutions:
    """`GatedResnet`'s `convolve` for a block evaluated on `region`: each of its
    two convolutions gets its input there written into its cache (`caches[0]`,
    `caches[1]`), then reads its window from that cache."""

    def __init__(self, caches: list[jnp.ndarray], region: Region):
        self.caches, self.region = list(caches), region
        self._calls = 0

    def __call__(self, conv: nn.Module, z: jnp.ndarray) -> jnp.ndarray:
        index, (start, size) = self._calls, self.region
        self._calls += 1
        self.caches[index] = _write(self.caches[index], z, start)
        return conv.valid(_read(self.caches[index], conv.window(start, size)), gather=True)


class _Biases(nn.Module):
    """`PixelCNNPP.block_biases` on its own (applied to the model's parameters)."""

    @nn.compact
    def __call__(self, model: PixelCNNPP, cond, batch: int) -> list[jnp.ndarray | None]:
        return model.block_biases(cond, batch)


class _FastPixelCNNPP:
    """The stepper's `init` and `step` for `model` with `variables`. Streams
    are numbered as the model's factories give them: 0 for u, 1 for ul."""

    def __init__(self, model: PixelCNNPP, variables, cond):
        self.model, self.variables, self.cond = model, variables, cond
        self.params = variables["params"]
        self.up_pairs, self.down_pairs = model.block_pairs()
        scales = model.num_scales
        self.pair_scale = {p: s for s, pairs in enumerate(self.up_pairs) for p in pairs}
        for depth, pairs in enumerate(self.down_pairs):
            self.pair_scale |= {p: scales - 1 - depth for p in pairs}

    def init(self, x: jnp.ndarray) -> dict:
        """Zero caches for images `x[B, H, W, C]`, and the blocks' conditioning biases."""
        self.model._check_shape(x.shape)
        batch, height, width, _ = x.shape
        f, scales = self.model.hidden_dim, self.model.num_scales
        dtype = self.model.dtype or jnp.float32

        def blank(scale: int, features: int) -> jnp.ndarray:
            return _blank(batch, (height >> scale, width >> scale), features, dtype)

        pairs = range(len(self.pair_scale))

        def stream() -> dict:
            return {
                "blocks": [[blank(self.pair_scale[p], 2 * f)] * 2 for p in pairs],
                # The inputs of the strided convolutions into resolutions 1 .. scales - 1,
                "downsample": [blank(s, f) for s in range(scales - 1)],
                # and of the transposed ones into scales - 2 .. 0, the size of their outputs.
                "upsample": [blank(s, f) for s in range(scales - 2, -1, -1)],
            }

        return {
            "streams": [stream(), stream()],
            "u_outputs": [blank(self.pair_scale[p], f) for p in pairs],
            "biases": _Biases().apply(self.variables, self.model, self.cond, batch),
        }

    def start_row(self, state: dict, x: jnp.ndarray, i: jnp.ndarray) -> dict:
        """The u stream on row `i >> s` of every resolution s."""
        image = self._image(x)
        width = image.shape[2] - 2 * _BORDER

        def at(scale: int) -> Region:
            return (i >> scale, 0), (1, width >> scale)

        conv = self.model.input_convs()[0]
        first = jnp.where(i > 0, self._conv(conv, image, ((i - 1, 0), (1, width))), 0)
        u, _, outs = self._pass(0, state, first, at, lambda pair, shortcut: shortcut)
        u_out = [
            _write(cache, outs[p], at(self.pair_scale[p])[0])
            for p, cache in enumerate(state["u_outputs"])
        ]
        return {**state, "streams": [u, state["streams"][1]], "u_outputs": u_out}

    def step(
        self, state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray
    ) -> tuple[dict, jnp.ndarray]:
        """The mixture parameters at pixel `(i, j)`, `[B, 1, 1, P]`: the ul
        stream at `(i >> s, j >> s)` of every resolution s, then the output."""
        image = self._image(x)

        def at(scale: int) -> Region:
            return (i >> scale, j >> scale), (1, 1)

        u = [_read(cache, at(self.pair_scale[p])) for p, cache in enumerate(state["u_outputs"])]

        def aux(pair: int, shortcut: jnp.ndarray | None) -> jnp.ndarray:
            if shortcut is None:
                return u[pair]
            return jnp.concatenate([u[pair], shortcut], axis=-1)

        _, above, left = self.model.input_convs()
        first = jnp.where(i > 0, self._conv(above, image, ((i - 1, j), (1, 1))), 0)
        first += jnp.where(j > 0, self._conv(left, image, ((i, j - 1), (1, 1))), 0)
        ul, h, _ = self._pass(1, state, first, at, aux)
        head = bind(self.model.head(image.shape[-1] - 1), self.params)
        return {**state, "streams": [state["streams"][0], ul]}, head(nn.elu(h)).astype(jnp.float32)

    def _image(self, x: jnp.ndarray) -> jnp.ndarray:
        """The network's input for images `x`, with the caches' border."""
        image = network_input(x, self.model.num_levels)
        return jnp.pad(image, ((0, 0), (_BORDER, 0), (_BORDER, _BORDER), (0, 0)))

    def _conv(self, layer: nn.Module, cache: jnp.ndarray, region: Region) -> jnp.ndarray:
        """The outputs of `layer` (a shifted convolution) on `region`, from its cached input."""
        window = _read(cache, layer.window(*region))
        return bind(layer, self.params).valid(window, gather=True)

    def _pass(
        self,
        stream: int,
        state: dict,
        first: jnp.ndarray,
        at: Callable[[int], Region],
        aux: Callable[[int, jnp.ndarray | None], jnp.ndarray | None],
    ) -> tuple[dict, jnp.ndarray, list[jnp.ndarray]]:
        """The up and down passes of `stream` on `at(s)` at every resolution s,
        from its first map there (`first`, resolution 0), as in `PixelCNNPP.__call__`.

        `aux(pair, shortcut)` is the `aux` of the stream's block in `pair`,
        given the up pass's map for it in the down pass (None in the up pass).
        Returns the stream's updated caches, its last map, and its blocks'
        outputs, by pair.
        """
        caches, biases = state["streams"][stream], state["biases"]
        blocks, downsample = list(caches["blocks"]), list(caches["downsample"])
        upsample, outs = list(caches["upsample"]), [None] * len(blocks)

        def block(pair: int, h: jnp.ndarray, shortcut: jnp.ndarray | None) -> jnp.ndarray:
            index = 2 * pair + stream
            convolve = _CachedConvolutions(blocks[pair], at(self.pair_scale[pair]))
            module = bind(self.model.block(index), self.params)
            outs[pair] = module(h, aux(pair, shortcut), biases[index], convolve=convolve)
            blocks[pair] = convolve.caches
            return outs[pair]

        h, kept = first, [first]
        for scale, pairs in enumerate(self.up_pairs):
            if scale:
                downsample[scale - 1] = _write(downsample[scale - 1], h, at(scale - 1)[0])
                layer = self.model.downsampling(scale)[stream]
                h = self._conv(layer, downsample[scale - 1], at(scale))
                kept.append(h)
            for pair in pairs:
                kept.append(h := block(pair, h, None))
        h = kept.pop()
        for depth, pairs in enumerate(self.down_pairs):
            if depth:
                scale = self.model.num_scales - 1 - depth
                layer = self.model.upsampling(scale)[stream]
                (row, col), (sh, sw) = at(scale + 1)[0], layer.strides
                spread = dilate(h, layer.strides)
                upsample[depth - 1] = _write(upsample[depth - 1], spread, (sh * row, sw * col))
                h = self._conv(layer, upsample[depth - 1], at(scale))
            for pair in pairs:
                h = block(pair, h, kept.pop())
        caches = {"blocks": blocks, "downsample": downsample, "upsample": upsample}
        return caches, h, outs


def pixelcnn_pp_stepper(model: PixelCNNPP, variables, cond=None) -> Stepper:
    """`model`'s fast `Stepper`: per step, one position per resolution in each
    layer of the ul stream; before a row's first step, one row of the u stream."""
    fast = _FastPixelCNNPP(model, variables, cond)
    return Stepper(init=fast.init, step=fast.step, start_row=fast.start_row)
