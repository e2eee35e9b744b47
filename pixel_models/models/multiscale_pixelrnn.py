"""Multi-scale PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural
Networks", Sec. 3.6 and Fig. 2, middle).

Two PixelRNNs (Row LSTM or Diagonal BiLSTM layers, `pixelrnn.py`):

* the *small* network, an unconditional PixelRNN of the s x s image
  `x_small = x[:, ::k, ::k]` subsampled from the n x n image `x` (k =
  `scale`, s = n / k);
* the *conditional* network, a PixelRNN of the n x n image given `x_small`:
  the paper's upsampling and biasing. An upsampling network maps `x_small`
  (scaled to [-1, 1]) by a 3x3 conv to c maps and a 2k x 2k transposed conv
  of stride k (a deconvolution) to a c x n x n conditioning map (ReLU after
  each); per recurrent layer an unmasked 1x1 conv maps it to 4h maps that
  are added to the layer's input-to-state gates (both directions' in a
  Diagonal BiLSTM). One 1x1 conv serves every layer, split per layer.

Likelihood. The subsampled pixels belong to the n x n image, so they are
counted once: the model's order is every subsampled pixel first (those with
i % k == 0 and j % k == 0, in raster order, R -> G -> B within a pixel),
then the other pixels in raster order, and

    log p(x) = log p(x_small) + log p(x_rest | x_small).

The output, categorical logits `[B, n, n, C, K]` like every PixelRNN's,
holds at the subsampled positions the small network's conditionals of
`x_small` and elsewhere the conditional network's (its outputs at the
subsampled positions are dropped). Each is the conditional of its subpixel
given every subpixel before it in the model's order: the small network sees
the earlier pixels of `x_small`; the conditional network sees all of
`x_small` (through the biases: all of it comes first) and, through its masked
convolutions, the pixels before its own in raster order, subsampled or not
(those are earlier either way). So `likelihood.conditional_log_probs` and
`log_prob` apply unchanged, and `log_prob` is exact and normalised over
n x n images; only the meaning of "before" differs from the raster-order
models (`subpixel_order`). Training by the one NLL trains each network on
its own term: they share no parameters.

Sampling follows the model's order in two stages (`sampling_stages`, see
`pixel_models.sampling`): the small network draws `x_small`; then the
conditional network, given it, draws the remaining subpixels of the n x n
image with the subsampled ones held known, like an image completion. Both
have the PixelRNNs' fast steppers (`pixelrnn.py`, the biases computed once).

What the paper leaves out: it describes the model (Sec. 3.6) and shows
samples of a 64x64 ImageNet multi-scale model (Fig. 7, with a 64x64
single-scale one; the two get "similar performance in log-likelihood";
Table 6 gives 3.63 bits/dim for 64x64 ImageNet), but gives no sizes for it:
neither s (we take k = 2: 32x32 for 64x64), nor the layers and units of the
two networks, nor the upsampling network's layers and c. The 3x3 conv and the
single 2k x 2k deconvolution here (DCGAN's 4x4 stride-2 one at k = 2), and
c = 2h by default, are our choices.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stage, Stepper
from pixel_models.layers.conditioning import check_unconditional
from pixel_models.layers.pixel_io import scale_pixels
from pixel_models.models.pixelrnn import DiagonalBiLSTM, PixelRNN, RowLSTM

# The recurrent layers a multi-scale model may use (`rnn`), by model name.
RNNS: dict[str, type[PixelRNN]] = {"row_lstm": RowLSTM, "diagonal_bilstm": DiagonalBiLSTM}


class Upsampler(nn.Module):
    """`x_small[B, s, s', C]` levels -> per layer a bias `[B, k s, k s', bias_features]`.

    3x3 conv to `maps` (c), ReLU; 2k x 2k transposed conv of stride k to c,
    ReLU (the c x n x n conditioning map); an unmasked 1x1 conv to
    `num_layers * bias_features`, split per layer.
    """

    num_levels: int
    scale: int
    maps: int
    num_layers: int
    bias_features: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x_small: jnp.ndarray) -> list[jnp.ndarray]:
        k = self.scale
        pixels = scale_pixels(x_small, self.num_levels)
        u = nn.relu(nn.Conv(self.maps, (3, 3), dtype=self.dtype)(pixels))
        deconv = nn.ConvTranspose(self.maps, (2 * k, 2 * k), strides=(k, k), dtype=self.dtype)
        u = nn.relu(deconv(u))  # the c x n x n conditioning map
        biases = nn.Conv(self.num_layers * self.bias_features, (1, 1), dtype=self.dtype)(u)
        return jnp.split(biases, self.num_layers, axis=-1)


class _MultiScaleFields(CategoricalModel, PixelModel):
    """The hyperparameters the multi-scale model and its conditional network
    share (`MultiScalePixelRNN` documents them), and their PixelRNNs."""

    num_levels: int
    rnn: str = "row_lstm"
    scale: int = 2
    hidden_dim: int = 16
    num_layers: int = 7
    input_kernel_size: int = 7
    output_hidden_dim: int = 32
    upsample_dim: int | None = None
    skip_connections: bool = False
    remat: bool = False
    dtype: Any = None

    @nn.nowrap
    def pixelrnn(self, hidden_dim: int, num_layers: int, name: str) -> PixelRNN:
        """A PixelRNN of the `rnn` kind with these sizes and the shared fields."""
        if self.rnn not in RNNS:
            raise ValueError(f"rnn={self.rnn!r}: use one of {', '.join(RNNS)}")
        return RNNS[self.rnn](
            self.num_levels,
            hidden_dim,
            num_layers,
            self.input_kernel_size,
            self.output_hidden_dim,
            self.skip_connections,
            self.remat,
            self.dtype,
            name=name,
        )

    @nn.nowrap
    def subsample(self, x: jnp.ndarray) -> jnp.ndarray:
        """`x[B, H, W, C]` -> `x_small = x[:, ::k, ::k]`; H and W must be multiples of k."""
        height, width = x.shape[1:3]
        if self.scale < 1 or height % self.scale or width % self.scale:
            raise ValueError(
                f"scale={self.scale} must divide the image's height and width, got {height}x{width}"
            )
        return x[:, :: self.scale, :: self.scale]


class ConditionalPixelRNN(_MultiScaleFields):
    """p(x | x_small) in raster order: `x[B, H, W, C]` and `cond` = `x_small`
    `[B, H/k, W/k, C]` (levels) -> logits `[B, H, W, C, K]` (float32), a
    PixelRNN (parameters `pixelrnn`) whose layers are biased by the upsampled
    `x_small` (`upsampler`)."""

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        expected = self.subsample(x).shape
        if cond is None or jnp.shape(cond) != expected:
            got = None if cond is None else jnp.shape(cond)
            raise ValueError(f"cond must be the subsampled image x_small {expected}, got {got}")
        return self.network()(x, layer_biases=self.upsampler()(cond))

    @nn.nowrap
    def fast_stepper(self, variables, cond: jnp.ndarray) -> Stepper:
        """The PixelRNN's fast stepper with the biases of `cond` = `x_small`."""
        params = variables["params"]
        biases = self.upsampler().apply({"params": params["upsampler"]}, cond)
        return self.network().fast_stepper({"params": params["pixelrnn"]}, layer_biases=biases)

    @nn.nowrap
    def network(self) -> PixelRNN:
        """The n x n PixelRNN."""
        return self.pixelrnn(self.hidden_dim, self.num_layers, "pixelrnn")

    @nn.nowrap
    def upsampler(self) -> Upsampler:
        """`x_small` -> the layers' biases, 4h maps each."""
        return Upsampler(
            self.num_levels,
            self.scale,
            self.upsample_dim or 2 * self.hidden_dim,
            self.num_layers,
            4 * self.hidden_dim,
            self.dtype,
            name="upsampler",
        )


class MultiScalePixelRNN(_MultiScaleFields):
    """`x[B, n, n', C]` integers in `[0, num_levels)` -> logits `[B, n, n', C, K]`
    (float32): at the subsampled positions the small network's, elsewhere
    the conditional network's (the module docstring gives the order).

    Attributes:
      num_levels: K, values per subpixel.
      rnn: the recurrent layers of both networks, "row_lstm" or "diagonal_bilstm".
      scale: k, the subsampling step: `x_small = x[:, ::k, ::k]`; the image's
        height and width are multiples of k.
      hidden_dim, num_layers: h and the layers of the conditional (n x n) network.
      small_hidden_dim, small_num_layers: those of the small network (None:
        the conditional network's).
      input_kernel_size, output_hidden_dim, skip_connections, remat: as in
        `PixelRNN`, for both networks.
      upsample_dim: c, maps of the upsampling network (None: 2h).
      dtype: compute dtype (parameters stay float32; logits are float32).
    """

    RASTER_ORDER: ClassVar[bool] = False  # x_small first: `sampling_stages`

    small_hidden_dim: int | None = None
    small_num_layers: int | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        check_unconditional(self, cond)
        x_small = self.subsample(x)
        logits = self.conditional()(x, x_small)
        k = self.scale
        return logits.at[:, ::k, ::k].set(self.small()(x_small))

    @nn.nowrap
    def sampling_stages(self, variables, cond=None) -> tuple[Stage, Stage]:
        """`x_small` by the small network; then, given it, the rest of the
        image by the conditional network (the subsampled pixels held known)."""
        check_unconditional(self, cond)
        params = variables["params"]
        every = slice(None, None, self.scale)
        return (
            Stage(self.small(), {"params": params["small"]}, rows=every, cols=every),
            Stage(self.conditional(), {"params": params["conditional"]}, cond=self.subsample),
        )

    @nn.nowrap
    def subpixel_order(self, image_shape: tuple[int, int, int]) -> np.ndarray:
        """int `[H, W, C]`: each subpixel's place in the model's order."""
        height, width, channels = image_shape
        subsampled = np.zeros((height, width), bool)
        subsampled[:: self.scale, :: self.scale] = True
        pixels = np.concatenate([np.flatnonzero(subsampled), np.flatnonzero(~subsampled)])
        place = np.empty(height * width, int)
        place[pixels] = np.arange(height * width)
        return place.reshape(height, width, 1) * channels + np.arange(channels)

    @nn.nowrap
    def small(self) -> PixelRNN:
        """The s x s PixelRNN (parameters `small`)."""
        return self.pixelrnn(
            self.small_hidden_dim or self.hidden_dim,
            self.small_num_layers or self.num_layers,
            "small",
        )

    @nn.nowrap
    def conditional(self) -> ConditionalPixelRNN:
        """The n x n PixelRNN given `x_small` (parameters `conditional`)."""
        return ConditionalPixelRNN(
            self.num_levels,
            self.rnn,
            self.scale,
            self.hidden_dim,
            self.num_layers,
            self.input_kernel_size,
            self.output_hidden_dim,
            self.upsample_dim,
            self.skip_connections,
            self.remat,
            self.dtype,
            name="conditional",
        )
