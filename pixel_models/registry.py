"""The one model registry: `config.model.name` -> Flax module class."""

import flax.linen as nn
import ml_collections

from pixel_models.pixelcnn import PixelCNN
from pixel_models.pixelrnn import DiagonalBiLSTM, RowLSTM

MODELS: dict[str, type[nn.Module]] = {
    "pixelcnn": PixelCNN,
    "row_lstm": RowLSTM,
    "diagonal_bilstm": DiagonalBiLSTM,
}


def build_model(model_config: ml_collections.ConfigDict) -> nn.Module:
    """Instantiate `MODELS[model_config.name]` with the other fields as arguments."""
    fields = dict(model_config)
    name = fields.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**fields)
    except TypeError as e:
        raise ValueError(f"bad hyperparameters for model {name!r}: {e}") from None
