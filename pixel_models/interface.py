"""The one written model interface: what every model of the zoo provides, and
what a model may provide.

Every registered model is a `PixelModel` (a Flax module). The trainer, the
sampling loop, `pixel_models.load`, the programs and the contract tests ask a
model through this interface, never by probing for attribute names.

Required (each model defines them):
  distribution: the output distribution (`pixel_models.distributions`) whose
    parameters `__call__` returns.
  __call__(x[B, H, W, C] int in [0, num_levels), cond=None, train=False):
    those parameters (categorical: logits `[B, H, W, C, K]`).

Optional (the defaults below say what a model without them does):
  fast_stepper(variables, cond): the incremental step of its fast sampler
    (cached activations or carried states), beside the model in its family's
    module. Default: the model has none.
  RASTER_ORDER / sampling_stages(variables, cond): the raster-order passes
    that sample it. Default: one pass over the whole image (raster order).
  subpixel_order(image_shape): each subpixel's place in the model's order.
    Default: raster order, R->G->B within a pixel.
  ENCODES / encode(variables, x): the model computes a code of its input
    (the auto-encoder), which its samples are decoded from: both samplers
    refuse to draw it without a code (`NEEDS_A_CODE`). Default: none.
  LATENT / log_weights(x, num_samples) / sample_latent(variables, rng, num):
    a latent-variable model p(x) = ∫ p(x | z) p(z) dz (VAE, PixelVAE, DRAW), whose
    likelihood is intractable: `__call__(x, cond=z)` gives p(x | z);
    `log_weights`, applied with a "latent" rng, gives the terms of the bounds
    of `likelihood.bound` (which trains and evaluates it; `likelihood.log_prob`
    refuses it without z); `sample_latent` draws z from the prior, which the
    sampler then decodes; its `encode` gives the posterior mean of z, the
    code that interpolations run between. Default: not latent (an exact
    likelihood).
  DRAWS_IN_STEPS / drawing_steps(variables, z, image_shape): a latent model
    that draws its image over steps (DRAW's canvas), given z. Default: none.
  CONDITIONED_ON, LIKELIHOOD: what its NLL is conditioned on by itself, and
    its own statement of what that NLL is. Default: nothing (p(x), or
    p(x | the cond given)).
  CPU_CHUNK_PIXELS: how a CPU step splits its batch. Default: it does not.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

# Why a model that `ENCODES` is not sampled without a code: with none, its
# `__call__` would encode the half-drawn image at every step.
NEEDS_A_CODE = (
    "the auto-encoder samples decodings of a code: pass cond=[B, code_dim] "
    "(e.g. model.encode(variables, images))"
)


@dataclasses.dataclass(frozen=True)
class Stepper:
    """An incremental step of a model, as the sampling loop runs it
    (`pixel_models.sampling.sampler`):

    * `init(x) -> state`: its state (e.g. cached activations) for images
      `x[B, H, W, C]`;
    * `step(state, x, i, j) -> (state, params)`: the distribution's parameters
      at pixel `(i, j)`, `[B, 1, 1, ...]` (the model's output layout), given
      `x`, whose subpixels before the unit drawn next are final. It may be
      called again at the same pixel (for the next colour) with that pixel's
      earlier colours filled in;
    * `start_row(state, x, i) -> state`: the work of row `i` that none of its
      pixels changes (what reads only the rows above, final in `x`), done once
      before the row's first step rather than inside a step. By default none.
    """

    init: Callable[[jnp.ndarray], Any]
    step: Callable[[Any, jnp.ndarray, jnp.ndarray, jnp.ndarray], tuple[Any, jnp.ndarray]]
    start_row: Callable[[Any, jnp.ndarray, jnp.ndarray], Any] = lambda state, x, i: state


M = TypeVar("M", bound=nn.Module)


def bind(module: M, params) -> M:
    """`module`, an unbound child made by its parent's factory method, bound
    to its parameters in the parent's `params` (by its name): how a stepper
    runs a model's own layers outside its `__call__`."""
    return module.bind({"params": params[module.name]})


@dataclasses.dataclass(frozen=True)
class Stage:
    """One raster-order pass of the sampling loop over `x[:, rows, cols]`.

    model, variables: what draws it (the sampler calls `model.apply` or
      `model.fast_stepper` on that part of the images);
    rows, cols: slices of the image's rows and columns (e.g. `::2`);
    cond: `x[B, H, W, C] -> the model's cond`, read from the images as the
      earlier stages left them.
    """

    model: "PixelModel"
    variables: Any
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))
    cols: slice = dataclasses.field(default_factory=lambda: slice(None))
    cond: Callable[[jnp.ndarray], Any] = lambda x: None


class PixelModel(nn.Module):
    """The base of every model of the zoo; the module docstring lists what a
    subclass must and may define."""

    CONDITIONED_ON: ClassVar[str | None] = None
    LIKELIHOOD: ClassVar[str | None] = None
    ENCODES: ClassVar[bool] = False
    LATENT: ClassVar[bool] = False
    DRAWS_IN_STEPS: ClassVar[bool] = False
    # False for a model sampled in stages (`sampling_stages`), whose order is
    # not raster order over the whole image.
    RASTER_ORDER: ClassVar[bool] = True
    # Pixels a device takes at a time in a CPU train or eval step
    # (`training.steps.cpu_chunk_pixels`; 0: its share of the batch whole).
    CPU_CHUNK_PIXELS: ClassVar[int] = 0

    @property
    def distribution(self):
        raise NotImplementedError(f"{type(self).__name__} declares no output distribution")

    @nn.nowrap
    def fast_stepper(self, variables, cond=None) -> Stepper:
        """The fast sampler's `Stepper` given `cond`; a ValueError when the
        model has none."""
        del variables, cond
        raise ValueError(f"{type(self).__name__} has no fast sampler: use sampler='naive'")

    @nn.nowrap
    def sampling_stages(self, variables, cond=None) -> tuple[Stage, ...]:
        """The raster-order passes that sample the model given `cond`."""
        return (Stage(self, variables, cond=lambda x: cond),)

    @nn.nowrap
    def subpixel_order(self, image_shape: tuple[int, int, int]) -> np.ndarray:
        """int `[H, W, C]`: each subpixel's place in the model's order."""
        return np.arange(int(np.prod(image_shape))).reshape(image_shape)

    @nn.nowrap
    def sample_latent(self, variables, rng, num: int) -> jnp.ndarray:
        """`num` draws of z from the prior (models with `LATENT`)."""
        del variables, rng, num
        raise ValueError(f"{type(self).__name__} has no latent variables")

    @nn.nowrap
    def drawing_steps(self, variables, z: jnp.ndarray, image_shape: tuple[int, int, int]):
        """The image as it is drawn given z `[B, m]` (models with
        `DRAWS_IN_STEPS`): `[B, T, H, W, C]` floats in [0, 1], each step's
        mean image, the last one the mean that the sample is drawn from."""
        del variables, z, image_shape
        raise ValueError(f"{type(self).__name__} does not draw in steps")

    @nn.nowrap
    def encode(self, variables, x: jnp.ndarray) -> jnp.ndarray:
        """The code `[B, m]` of images `x[B, H, W, C]`: the auto-encoder's
        (`ENCODES`), a latent-variable model's posterior mean of z."""
        del variables, x
        raise ValueError(f"{type(self).__name__} has no encoder")
