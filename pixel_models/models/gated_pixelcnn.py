"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders"), unconditional or conditioned on a class or an
embedding.

`num_layers` gated layers (`pixel_models.layers.gated`), each updating a
vertical stack (the rows above) and a horizontal stack (the pixels to the
left, R->G->B grouped), the vertical maps feeding the horizontal stack by a
1x1 conv; a residual connection in the horizontal stack from the second
layer on; every layer's 1x1 skip maps summed into the categorical output
stack shared with PixelCNN. Vertical and horizontal stacks together have no
blind spot: an output sees a rectangle of rows above (n0//2 + 1 deep and
n0//2 pixels either side after the first layer, of kernel n0; each later
layer, of kernel n, adds n//2 to both) and, in its own row, the earlier
colours of its pixel and the n0//2 + 1 + (L - 1) n//2 pixels to its left.

Conditioning (the paper's Eq. 4): `cond` adds a per-example bias to the
pre-activations of both gate halves of both stacks, different in every
layer. Integer labels `[B]` index a learned table (`V h` with h one-hot);
float embeddings `[B, D]` go through a Dense layer
(`pixel_models.layers.conditioning`, shared with PixelCNN++). Each is one
lookup or one GEMM for all layers at once, split per layer.

Fast sampling (`gated_stepper`, on the caches of `pixel_models.layers.conv_cache`):
a gated layer's vertical stack at row i reads only rows above i (of the
image) but the whole width of its input's row i, so it is computed a row at a
time, before the row's first step (`Stepper.start_row`), for every layer,
with what the horizontal stack takes from it (its 1x1 conv and the
conditioning bias). The horizontal stack reads the pixels up to `(i, j)` of
the current row and runs a pixel at a time.

Hyperparameters match the PyTorch peer's flags (bench/gated_pixelcnn_torch.py):
`hidden_dim` = `--hidden`, `num_layers` = `--layers`, `kernel_size` =
`--kernel`, `output_hidden_dim` = `--out-hidden`, `num_levels` = `--levels`,
and `input_kernel_size` = `--kernel` (the peer has no separate flag). The same
numbers build the same layers, with three differences: the last layer has no
residual 1x1 conv (the peer computes it and discards it: p^2 + p parameters
fewer), the first horizontal conv of an RGB model also reads the earlier
colours of the current pixel (the peer does not mask colours), and where the
peer's vertical maps above the image are zero padding, ours hold a constant
(the stack's response to the padding; image-independent either way).
"""

from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stepper, bind
from pixel_models.layers.conditioning import condition_bias
from pixel_models.layers.conv_cache import (
    before_pixel,
    centre,
    centre_kernel,
    padded_zeros,
    stacked_zeros,
    write,
    write_image,
    write_image_row,
    write_stacked,
)
from pixel_models.layers.gated import GatedLayer, gate
from pixel_models.layers.pixel_io import categorical_output, scale_pixels


class GatedPixelCNN(CategoricalModel, PixelModel):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]` (float32).

    `cond`: None (needs `num_classes` = 0); int labels `[B]` (needs
    `num_classes` > 0); or a float embedding `[B, D]`. Labels outside
    `[0, num_classes)` raise a ValueError when their values are known; under
    `jit` they cannot be checked and give NaN logits (hence a NaN loss), never
    another class's.

    Attributes:
      num_levels: K, values per subpixel.
      hidden_dim: p, feature maps of each stack (and of the skips).
      num_layers: gated layers (at least 1).
      input_kernel_size: n of the first layer, which reads the image with
        mask A: it sees the n//2 + 1 rows above (n wide) and as many pixels
        to the left.
      kernel_size: n of later layers: n x n vertical (the n//2 rows above and
        the current row of the vertical stack), 1 x n horizontal (n//2 + 1
        taps, mask B). Kernel sizes are odd.
      output_hidden_dim: maps of the output stack's hidden 1x1 conv.
      num_classes: classes of the labels `cond` may give; 0: no class table.
      dtype: compute dtype (parameters stay float32; logits are float32).
    """

    # 2 MNIST, CIFAR-10 or 32x32 ImageNet images (one 64x64 image) per CPU
    # chunk: their activations stay in a core's 1 MB L2 cache from one op to
    # the next (docs/benchmarks.md).
    CPU_CHUNK_PIXELS: ClassVar[int] = 2_048

    num_levels: int
    hidden_dim: int = 32
    num_layers: int = 7
    input_kernel_size: int = 3
    kernel_size: int = 3
    output_hidden_dim: int = 64
    num_classes: int = 0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        self._check_fields()
        num_colors = x.shape[-1]
        biases = self.cond_biases(cond, x.shape[0])
        v = h = scale_pixels(x, self.num_levels)
        skips = None
        for i, layer in enumerate(self.layers(num_colors)):
            v, h, skip = layer(v, h, None if biases is None else biases[:, i])
            skips = skip if skips is None else skips + skip
        return categorical_output(self, num_colors)(skips)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The fast sampler's stepper: the vertical stacks run a row at a time,
        the horizontal ones a pixel at a time (`gated_stepper`)."""
        return gated_stepper(self, variables, cond)

    # Factories of the submodules: inside `__call__` they make its submodules;
    # outside (`nn.nowrap`) unbound modules of the same names, which the fast
    # sampler binds to their parameters.

    @nn.nowrap
    def layers(self, num_colors: int) -> list[GatedLayer]:
        """The `num_layers` gated layers."""
        return [
            GatedLayer(
                self.hidden_dim,
                self.input_kernel_size if i == 0 else self.kernel_size,
                num_colors,
                first=i == 0,
                last=i == self.num_layers - 1,
                dtype=self.dtype,
                name=f"GatedLayer_{i}",
            )
            for i in range(self.num_layers)
        ]

    def _check_fields(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        for name in ("input_kernel_size", "kernel_size"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"{name} must be odd, got {getattr(self, name)}")

    @nn.nowrap
    def cond_biases(self, cond, batch: int) -> jnp.ndarray | None:
        """`cond` -> gate biases `[B, num_layers, 4p]` (per layer: vertical 2p,
        horizontal 2p), or None when unconditional. Its table or Dense layer
        belongs to the module whose compact method calls it (the model, in
        `__call__`)."""
        per_layer = 4 * self.hidden_dim
        bias = condition_bias(
            cond, batch, self.num_layers * per_layer, self.num_classes, self.dtype
        )
        return None if bias is None else bias.reshape(batch, self.num_layers, per_layer)


class _InScope(nn.Module):
    """A module whose compact body is `body(*args)`: the submodules `body`
    makes (through a model's `nn.nowrap` methods) are this module's, so
    `_InScope(body).apply(variables, ...)` runs them on the model's
    parameters of the same names."""

    body: Callable[..., Any]

    @nn.compact
    def __call__(self, *args):
        return self.body(*args)


def gated_stepper(model: GatedPixelCNN, variables, cond=None) -> Stepper:
    """The fast `Stepper` of a `GatedPixelCNN` given its `cond` (None, labels
    `[B]` or an embedding `[B, D]`, as for `model.apply`).

    State (p maps per stack, n the layer's kernel size, L layers):
      image: the scaled image padded for the first layer's vertical and
        horizontal convs (`{"vertical", "horizontal"}`);
      vertical: per later layer, the input of its vertical conv,
        `[B, H + n//2, W + 2 (n//2), p]`;
      horizontal: the inputs of the later layers' horizontal convs, stacked
        (`conv_cache.stacked_zeros`), `[L - 1, B, H, W + n//2, p]` (None for L = 1);
      from_vertical: per layer, what its horizontal stack takes from its
        vertical one (`GatedLayer.from_vertical`) on the current row, `[B, 1, W, 2p]`;
      biases: the conditioning biases `[B, L, 4p]`, or None;
      centres: the later layers' horizontal convs' centre taps' kernels
        (`centre_kernel`, computed once), `[p, 2p]` each.
    `start_row(i)` runs the vertical stacks of every layer on row i; a step,
    the horizontal stacks at `(i, j)`, returning the logits there, `[B, 1, 1, C, K]`:
    the later layers' horizontal convs from the pixels before `(i, j)` at
    once (`before_pixel`), then layer by layer the centre taps.
    """
    params = variables["params"]
    dtype = model.dtype or jnp.float32

    def layers(colors: int) -> list[GatedLayer]:
        return [bind(layer, params) for layer in model.layers(colors)]

    def bias(biases: jnp.ndarray | None, layer: int) -> jnp.ndarray | None:
        return None if biases is None else biases[:, layer]

    def init(x: jnp.ndarray) -> dict:
        batch, height, width, _ = x.shape
        first, *later = layers(x.shape[-1])
        hidden = (batch, height, width, model.hidden_dim)
        return {
            "image": {
                name: padded_zeros(getattr(first, name), x.shape, jnp.float32)
                for name in ("vertical", "horizontal")
            },
            "vertical": [padded_zeros(layer.vertical, hidden, dtype) for layer in later],
            "horizontal": (
                stacked_zeros([layer.horizontal for layer in later], hidden, dtype)
                if later
                else None
            ),
            "from_vertical": [
                jnp.zeros((batch, 1, width, 2 * model.hidden_dim), dtype)
                for _ in range(len(later) + 1)
            ],
            "biases": _InScope(model.cond_biases).apply(variables, cond, batch),
            "centres": [centre_kernel(layer.horizontal, model.hidden_dim) for layer in later],
        }

    def start_row(state: dict, x: jnp.ndarray, i: jnp.ndarray) -> dict:
        """The vertical stacks of row `i`, from the rows above."""
        width, colors = x.shape[2:]
        bound = layers(colors)
        # Row i - 1 is final now; at row 0 the vertical stacks read no image row.
        image = write_image_row(
            state["image"]["vertical"],
            bound[0].vertical,
            x,
            jnp.maximum(i - 1, 0),
            model.num_levels,
        )
        inputs = [image, *state["vertical"]]
        from_vertical = []
        for n, layer in enumerate(bound):
            v_conv = layer.vertical.at(inputs[n], i, 0, width)
            v_pre = layer.vertical_stack(v_conv, bias(state["biases"], n)).astype(dtype)
            from_vertical.append(layer.from_vertical(v_pre, bias(state["biases"], n)).astype(dtype))
            if n + 1 < len(bound):
                inputs[n + 1] = write(inputs[n + 1], bound[n + 1].vertical, gate(v_pre), i, 0)
        return state | {
            "image": state["image"] | {"vertical": image},
            "vertical": inputs[1:],
            "from_vertical": from_vertical,
        }

    def step(state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray):
        first, *later = bound = layers(x.shape[-1])
        image = write_image(
            state["image"]["horizontal"], first.horizontal, x, i, j, model.num_levels
        )
        # The later layers' horizontal convs at (i, j) from the pixels before it, at once.
        if later:
            before = before_pixel(state["horizontal"], [layer.horizontal for layer in later], i, j)
        h, inputs, skips = None, [], None
        for n, layer in enumerate(bound):
            if n == 0:
                h_conv = first.horizontal.at(image, i, j)
            else:
                h_conv = before[n - 1] + centre(layer.horizontal, state["centres"][n - 1], h)
                inputs.append(h)
            from_vertical = jax.lax.dynamic_slice_in_dim(state["from_vertical"][n], j, 1, axis=2)
            h, skip = layer.horizontal_stack(h_conv, from_vertical, h)
            skips = skip if skips is None else skips + skip
        logits = bind(categorical_output(model, x.shape[-1]), params)(skips)
        horizontal = state["horizontal"]
        if later:
            horizontal = write_stacked(horizontal, later[0].horizontal, inputs, i, j)
        new_state = state | {
            "image": state["image"] | {"horizontal": image},
            "horizontal": horizontal,
        }
        return new_state, logits

    return Stepper(init=init, step=step, start_row=start_row)
