"""A K-way categorical (softmax) per subpixel, the PixelRNN paper's output."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Independent softmaxes over `num_levels` values.

    Parameters: `logits[B, H, W, C, K]` (any float dtype; computed in float32).
    """

    num_levels: int
    # Each subpixel is drawn on its own (a sampler keeps one per step).
    samples_whole_pixels: ClassVar[bool] = False

    def conditionals(self, logits: jnp.ndarray, x: jnp.ndarray | None = None) -> jnp.ndarray:
        """Log-probabilities of every value, `[B, H, W, C, K]`; `x` is not needed."""
        del x
        return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)

    def log_prob(self, logits: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        """`log p(x)` per subpixel, `[B, H, W, C]` float32 nats."""
        log_p = self.conditionals(logits)
        return jnp.take_along_axis(log_p, x[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def sample(self, logits: jnp.ndarray, rng: jax.Array, temperature: float = 1.0) -> jnp.ndarray:
        """One value per subpixel, `int32[B, H, W, C]`, from softmax(logits / temperature)."""
        return self.draw(
            logits, jax.random.gumbel(rng, self.gumbel_shape(logits.shape)), temperature
        )

    def gumbel_shape(self, params_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the Gumbel noise that `draw` takes for logits of `params_shape`."""
        return tuple(params_shape)

    def draw(
        self, logits: jnp.ndarray, gumbel: jnp.ndarray, temperature: float = 1.0
    ) -> jnp.ndarray:
        """`sample` given its Gumbel noise (`gumbel_shape`): the Gumbel-max
        `argmax_k logits[..., k] / temperature + gumbel[..., k]`, `int32[B, H, W, C]`."""
        scaled = logits.astype(jnp.float32) / temperature
        return jnp.argmax(scaled + gumbel, axis=-1).astype(jnp.int32)


class CategoricalModel:
    """Mixin for a model whose `__call__` returns K-way logits: declares its
    output `distribution` from its `num_levels` field."""

    @property
    def distribution(self) -> Categorical:
        """The output distribution `__call__` returns the parameters of."""
        return Categorical(self.num_levels)
