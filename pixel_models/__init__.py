"""pixel_models: autoregressive image models in JAX/Flax."""

from pixel_models.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
