"""What to draw and how to show it: a `Canvas` holds the starting images, the
known subpixels, the conditioning and the grid layout, for plain samples,
samples per label, image completions, auto-encoder decodings and
interpolations between two images' codes.
`for_model` is the one place that decides which of them a model's samples
are; the trainer's sample grids, `experiments.sample`,
`experiments.benchmark` and `pixel_models.load` call it.
"""

import dataclasses
import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from pixel_models import sampling
from pixel_models.interface import PixelModel
from pixel_models.sampling.grid import make_grid, to_uint8
from pixel_models.training import sharding


@dataclasses.dataclass(frozen=True)
class Canvas:
    """`start[N, H, W, C]` int32 and `known[N, H, W, C]` bool (kept subpixels);
    `cond` (labels `[N]`, codes `[N, m]`) or None; the grid has `rows` rows,
    each `shown[r]` (fixed cells, `[P, H, W, C]` levels, e.g. the original
    and the occluded image) followed by N / rows samples, with
    `row_labels[r]` (the class of its samples), if given, written beside it."""

    start: np.ndarray
    known: np.ndarray
    cond: np.ndarray | None
    rows: int
    shown: np.ndarray | None = None
    row_labels: tuple[str, ...] | None = None

    def grid(self, samples: np.ndarray, num_levels: int) -> np.ndarray:
        """The samples `[N, H, W, C]` (levels) as one uint8 image `[H', W', C]`
        (`make_grid`, with a margin of row labels when the canvas has them);
        cells past the last sample are grey."""
        samples = np.asarray(samples, np.float64)
        blank = np.full((-len(samples) % self.rows, *samples.shape[1:]), np.nan)
        samples = np.concatenate([samples, blank]).reshape(self.rows, -1, *samples.shape[1:])
        if self.shown is not None:
            samples = np.concatenate([self.shown, samples], axis=1)
        return make_grid(to_uint8(samples, num_levels), row_labels=self.row_labels)


def unconditional(num_samples: int, image_shape: tuple[int, int, int]) -> Canvas:
    """`num_samples` images from scratch, in rows of about sqrt(N)."""
    start = np.zeros((num_samples, *image_shape), np.int32)
    rows = math.ceil(num_samples / math.ceil(math.sqrt(num_samples)))
    return Canvas(start, np.zeros(start.shape, bool), None, rows)


def _row_labels(labels: np.ndarray) -> tuple[str, ...]:
    """Class labels `[R]`, one per grid row, as the texts written beside the rows."""
    return tuple(str(int(label)) for label in labels)


def per_label(labels: list[int], per_row: int, image_shape: tuple[int, int, int]) -> Canvas:
    """One row of `per_row` samples for each of `labels`, the label beside it."""
    total = len(labels) * per_row
    start = np.zeros((total, *image_shape), np.int32)
    labels = np.asarray(labels, np.int32)
    cond = np.repeat(labels, per_row)
    return Canvas(start, np.zeros(start.shape, bool), cond, len(labels), None, _row_labels(labels))


def completions(
    images: np.ndarray, known_rows: int, num_completions: int, cond: np.ndarray | None = None
) -> Canvas:
    """Per image of `images[n, H, W, C]` a row: the image, the image with rows
    `known_rows:` occluded (shown mid-grey), and `num_completions` samples of
    the occluded rows given the rest. `cond` (`[n, ...]`) is repeated with them;
    class labels (`cond[n]` integers) are written beside their rows."""
    height = images.shape[1]
    if not 0 <= known_rows <= height:
        raise ValueError(f"complete_rows={known_rows} must be in [0, {height}]")
    start = np.repeat(np.asarray(images, np.int32), num_completions, axis=0)
    known = np.zeros(start.shape, bool)
    known[:, :known_rows] = True
    occluded = np.asarray(images, np.float64).copy()
    occluded[:, known_rows:] = np.nan  # shown grey
    shown = np.stack([images, occluded], axis=1)
    row_labels = None
    if cond is not None:
        cond = np.asarray(cond)
        if cond.ndim == 1 and np.issubdtype(cond.dtype, np.integer):
            row_labels = _row_labels(cond)
        cond = np.repeat(cond, num_completions, axis=0)
    return Canvas(start, known, cond, len(images), shown, row_labels)


def decodings(images: np.ndarray, codes: np.ndarray, num_decodings: int) -> Canvas:
    """Per image a row: the image, then `num_decodings` samples of the
    auto-encoder's decoder given the image's code `codes[n, m]`."""
    start = np.zeros((len(images) * num_decodings, *images.shape[1:]), np.int32)
    cond = np.repeat(np.asarray(codes, np.float32), num_decodings, axis=0)
    return Canvas(
        start, np.zeros(start.shape, bool), cond, len(images), np.asarray(images)[:, None]
    )


def interpolations(images: np.ndarray, codes: np.ndarray, steps: int) -> Canvas:
    """One row: the two images `images[2, H, W, C]`, then decodings of the
    codes at `steps` evenly spaced points from the first image's code to the
    second's, `(1 - a) codes[0] + a codes[1]` for a = 0 .. 1 (the ends are
    the two codes exactly)."""
    if steps < 2:
        raise ValueError(f"interpolation steps={steps} must be at least 2 (the two ends)")
    codes = np.asarray(codes, np.float32)
    alpha = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    cond = (1 - alpha) * codes[0] + alpha * codes[1]
    start = np.zeros((steps, *images.shape[1:]), np.int32)
    return Canvas(start, np.zeros(start.shape, bool), cond, 1, np.asarray(images)[None])


def with_latent(canvas: Canvas, model: PixelModel, variables, rng: jax.Array) -> Canvas:
    """`canvas` with z drawn from a latent model's prior as `sampling.sample`
    would draw it from `rng` (`fold_in(rng, LATENT_STREAM)`), fixed in its
    `cond`: the same samples, whose z other views (`drawing_steps`) can show."""
    z = sampling.prior_latent(model, variables, rng, len(canvas.start))
    return dataclasses.replace(canvas, cond=np.asarray(z))


def drawing_steps(
    model: PixelModel, variables, z: np.ndarray, image_shape: tuple[int, int, int], columns: int
) -> tuple[np.ndarray, list[int]]:
    """The canvas of a model that draws in steps (`DRAWS_IN_STEPS`) given
    z `[N, m]`, at `columns` evenly spaced steps of its T, the last one T:
    the mean images `[N, columns, H, W, C]` in [0, 1], and the steps shown
    (1 to T)."""
    if columns < 1:
        raise ValueError(f"drawing steps shown={columns} must be at least 1")
    frames = np.asarray(model.drawing_steps(variables, z, image_shape))
    total = frames.shape[1]
    shown = sorted({round(t) for t in np.linspace(total, 1, min(columns, total))})
    return frames[:, [t - 1 for t in shown]], shown


def for_model(
    model: PixelModel,
    variables,
    image_shape: tuple[int, int, int],
    num: int,
    labels: Sequence[int] | None = None,
    images: np.ndarray | None = None,
    codes: np.ndarray | None = None,
) -> Canvas:
    """What to draw of `model` (no completion):

    * a model that encodes its input (`model.ENCODES`, the auto-encoder), or
      one given `codes[n, m]` of `images` (a trained network's embeddings):
      per image of `images[n, H, W, C]`, the image and `num` samples given
      its code (the auto-encoder's own, unless `codes` are given);
    * a class-conditional model (`labels` given): a row of `num` samples per label;
    * any other: `num` samples.
    """
    if model.ENCODES or codes is not None:
        if images is None:
            raise ValueError(f"{type(model).__name__} decodes codes of images: give images")
        images = np.asarray(images, np.int32)
        if codes is None:
            codes = np.asarray(model.encode(variables, images))
        return decodings(images, codes, num)
    if labels is not None:
        return per_label(list(labels), num, image_shape)
    return unconditional(num, image_shape)


def draw(
    canvas: Canvas,
    model: PixelModel,
    variables,
    mesh: Mesh,
    rng: jax.Array,
    temperature: float = 1.0,
    sampler: str = "fast",
    on_row=None,
) -> np.ndarray:
    """Draw `canvas` with its batch sharded over `mesh` (padded to a multiple of
    the devices); the samples `[N, H, W, C]` int32 on the host."""
    total = len(canvas.start)
    padded = -total % mesh.devices.size
    leaves = {"start": canvas.start, "known": canvas.known}
    if canvas.cond is not None:
        leaves["cond"] = canvas.cond
    leaves = {k: np.concatenate([v, v[:1].repeat(padded, 0)]) for k, v in leaves.items()}
    batch = sharding.put_batch(mesh, leaves)
    out = sampling.sample(
        model,
        variables,
        rng,
        batch["start"],
        known=batch["known"],
        cond=batch.get("cond"),
        temperature=temperature,
        sampler=sampler,
        on_row=on_row,
    )
    return np.asarray(jax.device_get(out))[:total]
