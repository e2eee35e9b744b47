"""Building blocks of the models: masked convolutions (mask A/B, R->G->B
groups, vertical/horizontal regions) and the pixel input / logit output stack."""
