"""DRAW (Gregor et al. 2015, "DRAW: A Recurrent Neural Network For Image
Generation"): a recurrent VAE that draws on a canvas over `num_steps` (T)
steps, reading and writing through Gaussian filterbank attention.

Generative model: z_t ~ N(0, I) (`z_dim` numbers each, t = 1..T), a decoder
LSTM h_t = LSTM(h_{t-1}, z_t), and a canvas c_t = c_{t-1} + write(h_t); the
image is Bernoulli(sigmoid(c_T)) per pixel. Inference: an encoder LSTM reads
the image and its error image x - sigmoid(c_{t-1}) given h_{t-1} and gives
q(z_t | x, z_<t), a diagonal Gaussian. z is the T draws side by side,
`latent_dim = T * z_dim`, with the prior N(0, I) over all of them.

Attention (Sec. 3.2): from the decoder state, a grid of N x N Gaussian
filters (centre g, stride delta, variance sigma^2, intensity gamma); `read`
takes the N x N glimpses of the image and of the error image, `write` adds an
N x N patch through the transposed filters. Without attention, `read` is the
whole image and error image, `write` a whole-canvas patch.

Its likelihood is a bound (`likelihood.bound`): the ELBO's KL term is the sum
over t of KL(q(z_t | ...) || N(0, I)) in closed form for the z_<t drawn.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel
from pixel_models.models.vae import GaussianLatent, checked_latent, normal_log_density


def filterbank(
    centre: jnp.ndarray, stride: jnp.ndarray, variance: jnp.ndarray, grid: int, size: int
) -> jnp.ndarray:
    """The N x `size` filterbank along one axis, `[B, N, size]`, each row a
    Gaussian over the `size` pixels normalised to sum to 1 (Eq. 25-26).
    `centre`, `stride`, `variance`: `[B]` in pixels."""
    offsets = jnp.arange(grid, dtype=jnp.float32) - grid / 2 + 0.5
    mu = centre[:, None] + offsets[None] * stride[:, None]  # [B, N]
    a = jnp.arange(size, dtype=jnp.float32)
    logits = -((a[None, None] - mu[..., None]) ** 2) / (2 * variance[:, None, None])
    return jax.nn.softmax(logits, axis=-1)


def attention_params(
    out: jnp.ndarray, grid: int, height: int, width: int
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """A linear layer's 5 numbers `[B, 5]` -> the filterbanks F_Y `[B, N, H]`,
    F_X `[B, N, W]` and the intensity gamma `[B]` (Eq. 21-24)."""
    gx_, gy_, log_var, log_delta_, log_gamma = jnp.split(out, 5, axis=-1)
    gx = (width + 1) / 2 * (gx_[:, 0] + 1)
    gy = (height + 1) / 2 * (gy_[:, 0] + 1)
    delta = (max(height, width) - 1) / max(grid - 1, 1) * jnp.exp(log_delta_[:, 0])
    variance = jnp.exp(log_var[:, 0])
    # The paper's centres count pixels from 1; ours from 0.
    fy = filterbank(gy - 1, delta, variance, grid, height)
    fx = filterbank(gx - 1, delta, variance, grid, width)
    return fy, fx, jnp.exp(log_gamma[:, 0])


def read_glimpse(image: jnp.ndarray, fy: jnp.ndarray, fx: jnp.ndarray) -> jnp.ndarray:
    """`image[B, H, W]` -> the N x N glimpse F_Y image F_X^T, `[B, N, N]`."""
    return jnp.einsum("bnh,bhw,bmw->bnm", fy, image, fx)


def write_patch(patch: jnp.ndarray, fy: jnp.ndarray, fx: jnp.ndarray) -> jnp.ndarray:
    """`patch[B, N, N]` -> F_Y^T patch F_X on the canvas, `[B, H, W]`."""
    return jnp.einsum("bnh,bnm,bmw->bhw", fy, patch, fx)


def _lstm(params: dict, state: tuple, inputs: jnp.ndarray) -> tuple:
    """One LSTM step: `state` (h, c), each `[B, n]`, and `inputs[B, d]`."""
    h, c = state
    gates = inputs @ params["wx"] + h @ params["wh"] + params["b"]
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def _dense(params: dict, inputs: jnp.ndarray) -> jnp.ndarray:
    return inputs @ params["w"] + params["b"]


class DRAW(CategoricalModel, GaussianLatent, PixelModel):
    """Binary images `x[B, H, W, 1]` and `cond = z[B, T * z_dim]` -> logits
    `[B, H, W, 1, 2]` of p(x | z), the Bernoulli of the final canvas. With no
    `cond`, z is the posterior means drawn in turn (a reconstruction; `init`
    builds every weight).

    Attributes:
      num_levels: 2 (the canvas is a Bernoulli).
      num_steps: T, the glimpses.
      z_dim: numbers of each z_t.
      hidden_dim: units of each LSTM.
      read_size, write_size: N of the read and write grids; 0: no attention.
      dtype: unused (DRAW computes in float32); kept for the common fields.
    """

    num_levels: int
    num_steps: int = 64
    z_dim: int = 100
    hidden_dim: int = 256
    read_size: int = 2
    write_size: int = 5
    dtype: Any = None

    DRAWS_IN_STEPS: ClassVar[bool] = True

    @property
    def latent_dim(self) -> int:
        """All T draws of z_t side by side."""
        return self.num_steps * self.z_dim

    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout
        if cond is None:
            return self._run(x, None, "reconstruct")
        return self._run(x, checked_latent(cond, len(x), self), "decode")

    def log_weights(self, x: jnp.ndarray, num_samples: int) -> dict[str, jnp.ndarray]:
        """The terms of the bounds, as `GaussianLatent.gaussian_log_weights`
        gives them, with z_t drawn in turn from q(z_t | x, z_<t)."""
        return self._run(x, None, "bound", num_samples)

    @nn.nowrap
    def drawing_steps(self, variables, z: jnp.ndarray, image_shape: tuple[int, int, int]):
        """sigmoid(c_t) for t = 1..T given z `[B, T * z_dim]`: the canvas as it
        is drawn, `[B, T, H, W, 1]` float32 in [0, 1]."""
        x = jnp.zeros((len(z), *image_shape), jnp.int32)
        z = checked_latent(z, len(z), self)
        return self.apply(variables, x, z, "canvases", method=self._run)

    @nn.nowrap
    def encode(self, variables, x: jnp.ndarray) -> jnp.ndarray:
        """The posterior means of z_1..z_T drawn in turn (each z_t its mean
        given the earlier ones), `[B, T * z_dim]`: the code of x."""
        return self.apply(variables, x, None, "encode", method=self._run)

    @nn.compact
    def _run(self, x: jnp.ndarray, z: jnp.ndarray | None, mode: str, num_samples: int = 0):
        """The one recurrence, by `mode`: given `z`, "decode" (the logits) or
        "canvases" (every canvas); from x, "reconstruct" (the logits of the
        posterior means drawn in turn), "encode" (those means) or "bound"
        (the bound terms for `num_samples` draws)."""
        if self.num_levels != 2 or x.shape[-1] != 1:
            raise ValueError(
                f"DRAW draws binary grey images (num_levels=2, one channel); got "
                f"num_levels={self.num_levels} and {x.shape[-1]} channels"
            )
        batch, height, width, _ = x.shape
        weights = self._weights(height, width)
        if z is not None:
            steps = z.reshape(batch, self.num_steps, self.z_dim).swapaxes(0, 1)
            canvases = self._decode(weights, steps, height, width)
            if mode == "canvases":
                return jax.nn.sigmoid(canvases).swapaxes(0, 1)[..., None]
            return _bernoulli_logits(canvases[-1])
        image = x[..., 0].astype(jnp.float32)
        if mode in ("reconstruct", "encode"):
            eps = jnp.zeros((self.num_steps, batch, self.z_dim))
            z, _, _, canvas = self._infer(weights, image, eps)
            if mode == "encode":
                return z.swapaxes(0, 1).reshape(batch, self.latent_dim)
            return _bernoulli_logits(canvas)
        images = jnp.broadcast_to(image, (num_samples, *image.shape)).reshape(-1, height, width)
        eps = jax.random.normal(self.make_rng("latent"), (self.num_steps, len(images), self.z_dim))
        z, log_pz_qz, kl, canvas = self._infer(weights, images, eps)
        targets = images.astype(jnp.int32)[..., None]
        log_px_z = self.distribution.log_prob(_bernoulli_logits(canvas), targets).sum((1, 2, 3))
        return {
            "log_px_z": log_px_z.reshape(num_samples, batch),
            "log_pz_qz": log_pz_qz.reshape(num_samples, batch),
            "kl": kl.reshape(num_samples, batch).mean(axis=0),
        }

    def _weights(self, height: int, width: int) -> dict:
        """Every weight, as arrays (the recurrences run under `lax.scan`)."""
        n, init = self.hidden_dim, nn.initializers.lecun_normal()
        read_dim = 2 * (self.read_size**2 if self.read_size else height * width)
        write_dim = self.write_size**2 if self.write_size else height * width

        def dense(name: str, fan_in: int, fan_out: int) -> dict:
            return {
                "w": self.param(f"{name}_w", init, (fan_in, fan_out)),
                "b": self.param(f"{name}_b", nn.initializers.zeros, (fan_out,)),
            }

        def lstm(name: str, fan_in: int) -> dict:
            return {
                "wx": self.param(f"{name}_wx", init, (fan_in, 4 * n)),
                "wh": self.param(f"{name}_wh", init, (n, 4 * n)),
                "b": self.param(f"{name}_b", nn.initializers.zeros, (4 * n,)),
            }

        weights = {
            "encoder": lstm("encoder", read_dim + n),
            "decoder": lstm("decoder", self.z_dim),
            "posterior": dense("posterior", n, 2 * self.z_dim),
            "write": dense("write", n, write_dim),
        }
        if self.read_size:
            weights["read_attention"] = dense("read_attention", n, 5)
        if self.write_size:
            weights["write_attention"] = dense("write_attention", n, 5)
        return weights

    @nn.nowrap
    def _write(self, weights: dict, h: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
        """The decoder state `h[B, n]` -> what it adds to the canvas, `[B, H, W]`."""
        patch = _dense(weights["write"], h)
        if not self.write_size:
            return patch.reshape(len(h), height, width)
        fy, fx, gamma = attention_params(
            _dense(weights["write_attention"], h), self.write_size, height, width
        )
        patch = patch.reshape(len(h), self.write_size, self.write_size)
        return write_patch(patch, fy, fx) / gamma[:, None, None]

    @nn.nowrap
    def _read(self, weights: dict, image, error, h) -> jnp.ndarray:
        """The image and error image `[B, H, W]` as the encoder reads them, `[B, read_dim]`."""
        if not self.read_size:
            return jnp.concatenate([image, error], axis=-1).reshape(len(h), -1)
        fy, fx, gamma = attention_params(
            _dense(weights["read_attention"], h), self.read_size, *image.shape[1:]
        )
        glimpses = [read_glimpse(m, fy, fx) for m in (image, error)]
        return gamma[:, None] * jnp.concatenate(glimpses, axis=-1).reshape(len(h), -1)

    @nn.nowrap
    def _decode(self, weights: dict, steps: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
        """z_t `[T, B, z_dim]` -> the canvases c_1..c_T `[T, B, H, W]`."""
        batch = steps.shape[1]
        zeros = jnp.zeros((batch, self.hidden_dim))

        def step(carry, z_t):
            state, canvas = carry
            state = _lstm(weights["decoder"], state, z_t)
            canvas = canvas + self._write(weights, state[0], height, width)
            return (state, canvas), canvas

        _, canvases = jax.lax.scan(step, ((zeros, zeros), jnp.zeros((batch, height, width))), steps)
        return canvases

    @nn.nowrap
    def _infer(self, weights: dict, image: jnp.ndarray, eps: jnp.ndarray):
        """Images `[B, H, W]` and noise `[T, B, z_dim]` -> z `[T, B, z_dim]`,
        log p(z) - log q(z | x) `[B]`, the KL terms' sum `[B]` and the final
        canvas `[B, H, W]`."""
        batch, height, width = image.shape
        zeros = jnp.zeros((batch, self.hidden_dim))

        def step(carry, eps_t):
            encoder, decoder, canvas = carry
            error = image - jax.nn.sigmoid(canvas)
            read = self._read(weights, image, error, decoder[0])
            encoder = _lstm(weights["encoder"], encoder, jnp.concatenate([read, decoder[0]], -1))
            mean, log_std = jnp.split(_dense(weights["posterior"], encoder[0]), 2, axis=-1)
            z = mean + jnp.exp(log_std) * eps_t
            log_pz_qz = normal_log_density(z) - normal_log_density(z, mean, log_std)
            kl = 0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
            decoder = _lstm(weights["decoder"], decoder, z)
            canvas = canvas + self._write(weights, decoder[0], height, width)
            return (encoder, decoder, canvas), (z, log_pz_qz, kl)

        start = ((zeros, zeros), (zeros, zeros), jnp.zeros((batch, height, width)))
        (_, _, canvas), (z, log_pz_qz, kl) = jax.lax.scan(step, start, eps)
        return z, log_pz_qz.sum(0), kl.sum(0), canvas

    @nn.nowrap
    def subpixel_order(self, image_shape: tuple[int, int, int]) -> np.ndarray:
        """All in one place: given z, the pixels are independent Bernoullis."""
        return np.zeros(image_shape, int)


def _bernoulli_logits(canvas: jnp.ndarray) -> jnp.ndarray:
    """Canvas `[B, H, W]` -> two-way logits `[B, H, W, 1, 2]`: softmax([0, c])
    is Bernoulli(sigmoid(c))."""
    canvas = canvas.astype(jnp.float32)[..., None, None]
    return jnp.concatenate([jnp.zeros_like(canvas), canvas], axis=-1)
