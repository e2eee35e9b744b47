"""pixel_models: autoregressive image models in JAX/Flax.

`load(workdir)` gives a trained run (`TrainedModel`: log_prob, bits_per_dim,
sample, complete); `build_model(model_config)` a model of the registry;
`likelihood` the exact NLL of any model; `data` the datasets.
"""

from pixel_models import data, likelihood
from pixel_models.interface import PixelModel
from pixel_models.models.registry import MODELS, build_model
from pixel_models.trained_model import TrainedModel, load

__all__ = ["MODELS", "PixelModel", "TrainedModel", "build_model", "data", "likelihood", "load"]
