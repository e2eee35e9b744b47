"""Fast PixelCNN++ sampling (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models", which treat this model): the input of
every convolution is cached, and a step computes only what the pixels drawn
so far complete.

The schedule follows from the windows of the shifted convolutions (plain,
strided and transposed; `pixel_models.layers.shifted_conv`). At resolution s
(maps of `H / 2^s x W / 2^s`), the u stream at row r sees only the image rows
above `2^s r`, and the ul stream at `(r, c)` only the pixels before
`(2^s r, 2^s c)` in raster order. So at pixel `(i, j)`, resolution s works at
`(i >> s, j >> s)`:

* when a row starts (`j = 0`): the u stream's row `i >> s` of every
  resolution, up pass then down pass;
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
"""

from collections.abc import Callable
from typing import TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.layers.shifted_conv import dilate
from pixel_models.models.pixelcnn_pp import PixelCNNPP, network_input
from pixel_models.sampling.sampler import Stepper

M = TypeVar("M", bound=nn.Module)

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


def _bind(module: M, params) -> M:
    """`module`, made by a `PixelCNNPP` factory, bound to its parameters in `params`."""
    return module.bind({"params": params[module.name]})


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

    def step(
        self, state: dict, x: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray
    ) -> tuple[dict, jnp.ndarray]:
        """The mixture parameters at pixel `(i, j)`, `[B, 1, 1, P]`: the u rows
        first when a row starts, then the ul stream at the pixel."""
        image = network_input(x, self.model.num_levels)
        image = jnp.pad(image, ((0, 0), (_BORDER, 0), (_BORDER, _BORDER), (0, 0)))
        state = jax.lax.cond(j == 0, self._rows, lambda state, image, i: state, state, image, i)
        return self._pixel(state, image, i, j)

    def _rows(self, state: dict, image: jnp.ndarray, i: jnp.ndarray) -> dict:
        """The u stream on row `i >> s` of every resolution s."""
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

    def _pixel(
        self, state: dict, image: jnp.ndarray, i: jnp.ndarray, j: jnp.ndarray
    ) -> tuple[dict, jnp.ndarray]:
        """The ul stream at `(i >> s, j >> s)` of every resolution s, and the output at `(i, j)`."""

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
        head = _bind(self.model.head(image.shape[-1] - 1), self.params)
        return {**state, "streams": [state["streams"][0], ul]}, head(nn.elu(h)).astype(jnp.float32)

    def _conv(self, layer: nn.Module, cache: jnp.ndarray, region: Region) -> jnp.ndarray:
        """The outputs of `layer` (a shifted convolution) on `region`, from its cached input."""
        window = _read(cache, layer.window(*region))
        return _bind(layer, self.params).valid(window, gather=True)

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
            module = _bind(self.model.block(index), self.params)
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


def fast_stepper(model: PixelCNNPP, variables, cond=None) -> Stepper:
    """`model`'s fast `Stepper`: per step, one position per resolution in each
    layer of the ul stream, and one row of the u stream when a row starts."""
    fast = _FastPixelCNNPP(model, variables, cond)
    return Stepper(init=fast.init, step=fast.step)
