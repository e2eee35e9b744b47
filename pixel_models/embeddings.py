"""Conditioning on a trained network's embeddings (van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders", Sec. 3.3: portraits
conditioned on the top layer of a face network, new portraits from the
embedding of one held-out image, and interpolations between two embeddings).

A run with `config.conditioning = "embedding"` names its embedding network by
workdir, `config.embedding.workdir`: a run of this project whose model has a
code of an image (the auto-encoder's code, a latent-variable model's
posterior mean; `TrainedModel.code`), of `config.embedding.dim` numbers.
`pixel_models.load` loads that network with the run
(`TrainedModel.embedding_network`). Each split the run reads is embedded
once, as it is loaded (`load_split`): example i's embedding is the network's
code of image i itself, so embeddings and examples cannot fall out of step.
"""

import dataclasses

import ml_collections
import numpy as np

from pixel_models import data
from pixel_models.trained_model import TrainedModel
from pixel_models.training.progress import progress_bar

# Images embedded per call of the network while a split loads.
CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class EmbeddedSource:
    """A split whose batches carry each example's embedding: `batch(indices)`
    is `source.batch(indices)` and "embedding", float32 `[n, dim]`, the rows
    `indices` of `embeddings[N, dim]` (row i: example i of `source`)."""

    source: data.ImageSource
    embeddings: np.ndarray

    def __post_init__(self):
        if len(self.embeddings) != len(self.source):
            raise ValueError(
                f"{len(self.embeddings)} embeddings for a split of {len(self.source)} examples: "
                "each example needs its own, in the split's order"
            )

    def __len__(self) -> int:
        return len(self.source)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return self.source.batch(indices) | {"embedding": self.embeddings[indices]}


def embed(source: data.ImageSource, network: TrainedModel) -> EmbeddedSource:
    """Every example of `source` with `network`'s code of its image
    (`TrainedModel.code`), computed `CHUNK` images at a time."""
    starts = range(0, len(source), CHUNK)
    chunks = [
        network.code(source.batch(np.arange(start, min(start + CHUNK, len(source))))["image"])
        for start in progress_bar(starts, desc="embed", unit="chunk", leave=False)
    ]
    return EmbeddedSource(source, np.concatenate(chunks))  # float32, as `code` gives


def load_split(
    config: ml_collections.ConfigDict, split: str, network: TrainedModel | None
) -> data.ImageSource | EmbeddedSource:
    """`split` of the run `config`'s dataset, embedded by `network` when the
    run is conditioned on embeddings (`TrainedModel.embedding_network`, or
    `trained_model.load_embedding_network(config)`), else as it is."""
    source = data.load_split(config.dataset, split)
    return source if network is None else embed(source, network)
