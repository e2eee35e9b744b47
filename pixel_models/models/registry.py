"""The one model registry: `config.model.name` -> Flax module class."""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from pixel_models.models.draw import DRAW
from pixel_models.models.gated_pixelcnn import GatedPixelCNN
from pixel_models.models.multiscale_pixelrnn import MultiScalePixelRNN
from pixel_models.models.pixel_vae import PixelVAE
from pixel_models.models.pixelcnn import PixelCNN
from pixel_models.models.pixelcnn_autoencoder import PixelCNNAutoEncoder
from pixel_models.models.pixelcnn_pp import PixelCNNPP
from pixel_models.models.pixelrnn import DiagonalBiLSTM, RowLSTM
from pixel_models.models.vae import VAE

MODELS: dict[str, type[nn.Module]] = {
    "pixelcnn": PixelCNN,
    "row_lstm": RowLSTM,
    "diagonal_bilstm": DiagonalBiLSTM,
    "gated_pixelcnn": GatedPixelCNN,
    "pixelcnn_pp": PixelCNNPP,
    "pixelcnn_autoencoder": PixelCNNAutoEncoder,
    "multiscale_pixelrnn": MultiScalePixelRNN,
    "vae": VAE,
    "pixel_vae": PixelVAE,
    "draw": DRAW,
}


def build_model(model_config: ml_collections.ConfigDict) -> nn.Module:
    """Instantiate `MODELS[model_config.name]` with the other fields as arguments."""
    fields = dict(model_config)
    name = fields.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    _check_compute_dtype(fields.get("dtype"))
    for field, value in fields.items():
        _check_field(field, value)
    try:
        return MODELS[name](**fields)
    except TypeError as e:
        raise ValueError(f"bad hyperparameters for model {name!r}: {e}") from None


# The whole-number fields that are not sizes, and their least values; every
# other whole-number field (a width, a depth, a count, a kernel size) is >= 1
# (DRAW's grid sizes: 0 is no attention).
_LEAST = {"num_levels": 2, "num_classes": 0, "read_size": 0, "write_size": 0}


def _check_field(field: str, value) -> None:
    """A whole-number field at least its least value (`_LEAST`, else 1), and a
    `*_rate` in [0, 1); a ValueError that names `model.<field>` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        least = _LEAST.get(field, 1)
        if value < least:
            raise ValueError(f"model.{field}={value} must be at least {least}")
    elif field.endswith("_rate") and not 0.0 <= value < 1.0:
        raise ValueError(f"model.{field}={value} must be in [0, 1)")


def _check_compute_dtype(dtype: str | None) -> None:
    """`model.dtype` must name a floating-point type (float32, bfloat16, ...)."""
    if dtype is None:
        return
    try:
        valid = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"model.dtype={dtype!r} is not a floating-point type: use float32, or bfloat16 "
            "on GPU/TPU"
        )
