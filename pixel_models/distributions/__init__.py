"""Output distributions: what a model's `apply` returns the parameters of.

Each gives, for images `x[B, H, W, C]` in `[0, K)`:
- `log_prob(params, x) -> [B, H, W, C]`: log p(x[b,i,j,c] | everything before
  it) in nats, float32, in raster order and R->G->B within a pixel;
- `conditionals(params, x) -> [B, H, W, C, K]`: that conditional for every
  value (the checks compare whole distributions);
- `sample(params, rng) -> int32 [B, H, W, C]`: a draw of every subpixel from
  its conditional given `x` (a sampler keeps the next one and runs again).

`Categorical` (PixelCNN, PixelRNN) takes logits `[B, H, W, C, K]`, one softmax
per subpixel. `DiscretizedLogisticMixture` (PixelCNN++) takes `[B, H, W, P]`
(its docstring gives the layout): a mixture over each whole pixel whose
channels depend on the pixel's earlier channels, so its `conditionals` for
channel c read `x` at channels before c of the same pixel, and its `sample`
draws each pixel's channels jointly (a sampler keeps the next whole pixel).
"""

from pixel_models.distributions.categorical import Categorical, CategoricalModel
from pixel_models.distributions.logistic_mixture import DiscretizedLogisticMixture

__all__ = ["Categorical", "CategoricalModel", "DiscretizedLogisticMixture"]
