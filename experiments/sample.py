"""Samples and image completions from a trained run, as a PNG grid.

python -m experiments.sample --workdir=DIR --num_samples=N --output=FILE.png
    [--temperature=T] [--labels=3,3,7] [--sampler=fast|naive] [--seed=S]
    [--complete_split=test --complete_rows=14 --num_completions=4]
    [--interpolate=I,J --interpolation_steps=8] [--code_split=test]
    [--drawing_steps=8] [--checkpoint_step=N] [--params=raw|ema] [--data_dir=D]

Restores the parameters only (the EMA when the run keeps one; --params
chooses) and writes FILE.png and FILE.npy (the drawn images, uint8 levels
`[N, H, W, C]`):

* unconditional runs: N samples, in rows of about sqrt(N);
* class-conditional runs: one row of N samples per label of --labels
  (default: every class);
* the auto-encoder: per image of --code_split (the first N), the image and
  --num_completions decodings of its code;
* a run conditioned on a trained network's embeddings: per image of
  --code_split (the first N, held-out test images by default), the image and
  --num_completions samples given its embedding (the Gated PixelCNN paper's
  new portraits of a person from one image);
* with --complete_split: per image of that split (N of them), the image, the
  image with rows --complete_rows and below occluded, and --num_completions
  completions of the occluded rows (the rest never changes), conditioned on
  each image's own label in a class-conditional run (--labels is refused).
  Each drawn subpixel is conditioned on the kept and drawn subpixels before
  it in the model's order: for raster-order models p(occluded | kept); the
  multi-scale PixelRNN draws its subsampled pixels first, without seeing the
  kept pixels that are not subsampled, so its completions are not that.
* DRAW, which draws its image over T steps: FILE_steps.png as well, per
  sample a row of its canvas (the mean image) at --drawing_steps evenly
  spaced steps, the last one T, then the sample drawn from it;
* with --interpolate=I,J (the auto-encoder, the latent-variable models, runs
  conditioned on embeddings): images I and J of --code_split, then samples
  given codes at --interpolation_steps evenly spaced points from I's code to
  J's (the auto-encoder's code; a latent model's posterior mean of z; the
  embedding), ends included: the ends are I's and J's codes exactly.

--complete_rows needs --complete_split, and so does --num_completions except
for the auto-encoder and runs conditioned on embeddings.

--temperature=T divides a categorical's logits by T. For PixelCNN++ it divides
the mixture logits by T and multiplies the logistic scales by T: at small K,
T = 2 can lower the entropy (mass moves into the open-ended edge bins), and as
T -> 0 each subpixel gets the most likely component's nearest level, not the
most likely level (T below 1e-30 acts as 1e-30).

The fast and naive samplers draw the same images for the same --seed, except,
rarely, for PixelCNN++ at 256 levels, where float rounding in their sums can
tip a near-tied draw.
"""

import pathlib

import jax
import numpy as np
from absl import flags

from experiments import program
from pixel_models import data, sampling
from pixel_models.sampling import canvases
from pixel_models.sampling.grid import make_grid, save_png, to_uint8
from pixel_models.trained_model import TrainedModel, load
from pixel_models.training import train_state
from pixel_models.training.progress import progress_bar

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a run made by experiments.train")
_NUM = flags.DEFINE_integer("num_samples", 16, "Samples (per label; images to complete)")
_OUTPUT = flags.DEFINE_string("output", None, "PNG file to write (and FILE.npy beside it)")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Sampling temperature, > 0")
_LABELS = flags.DEFINE_list("labels", None, "Class labels of a conditional run, one row each")
_SAMPLER = flags.DEFINE_enum("sampler", "fast", sampling.SAMPLERS, "Sampler")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed: the same seed, the same images")
_COMPLETE_SPLIT = flags.DEFINE_string("complete_split", None, "Complete images of this split")
_COMPLETE_ROWS = flags.DEFINE_integer("complete_rows", None, "Rows kept (default: half)")
_NUM_COMPLETIONS = flags.DEFINE_integer("num_completions", 4, "Completions (decodings) per image")
_INTERPOLATE = flags.DEFINE_list(
    "interpolate", None, "I,J: interpolate between these images' codes"
)
_INTERPOLATION_STEPS = flags.DEFINE_integer("interpolation_steps", 8, "Points, ends included")
_CODE_SPLIT = flags.DEFINE_string(
    "code_split", "test", "Split of the images whose codes samples are drawn given (and of I, J)"
)
_DRAWING_STEPS = flags.DEFINE_integer(
    "drawing_steps", 8, "DRAW: canvases per sample in FILE_steps.png (evenly spaced steps)"
)
_STEP = flags.DEFINE_integer("checkpoint_step", None, "Checkpoint to sample (default: newest)")
_PARAMS = flags.DEFINE_enum(
    "params", None, train_state.PARAMS, "Parameters to sample (default: the EMA if kept, else raw)"
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data folder (default: the run's)")
flags.mark_flags_as_required(["workdir", "output"])


# What a completion of a model sampled in stages is (`sampling.sample`).
NOT_THE_POSTERIOR = (
    "this model draws its subsampled pixels first, so these completions are not draws "
    "from p(occluded | kept): each drawn subpixel is conditioned on the kept and drawn "
    "subpixels before it in the model's order (subsampled pixels first, then raster order)"
)


def _checked_flags() -> None:
    if _NUM.value < 1 or _NUM_COMPLETIONS.value < 1:
        raise ValueError("--num_samples and --num_completions must be at least 1")
    if not 0 < _TEMPERATURE.value < float("inf"):
        raise ValueError(f"--temperature={_TEMPERATURE.value} must be > 0 and finite")
    if _COMPLETE_SPLIT.value is None and _COMPLETE_ROWS.present:
        raise ValueError("--complete_rows needs --complete_split (the images to complete)")
    if _COMPLETE_SPLIT.value is not None and _LABELS.value:
        raise ValueError(
            "--labels with --complete_split: completions are conditioned on each image's own "
            "label; drop --labels"
        )
    if _DRAWING_STEPS.value < 1:
        raise ValueError(f"--drawing_steps={_DRAWING_STEPS.value} must be at least 1")
    if not _OUTPUT.value.endswith(".png"):
        raise ValueError(f"--output={_OUTPUT.value} must name a .png file")
    if not pathlib.Path(_OUTPUT.value).absolute().parent.is_dir():
        raise ValueError(f"--output={_OUTPUT.value}: its folder does not exist")


def _labels(trained: TrainedModel) -> list[int] | None:
    """--labels, checked (default: every class); None for a run without labels."""
    num_classes = trained.num_classes
    if not num_classes:
        if _LABELS.value:
            raise ValueError("--labels given, but this run is not class-conditional")
        return None
    if not _LABELS.value:
        return list(range(num_classes))
    try:
        labels = [int(label) for label in _LABELS.value]
    except ValueError:
        raise ValueError(f"--labels={','.join(_LABELS.value)} must be integers") from None
    if not all(0 <= label < num_classes for label in labels):
        raise ValueError(f"--labels must be in [0, {num_classes}), got {labels}")
    return labels


def _interpolation(trained: TrainedModel) -> canvases.Canvas:
    """--interpolate=I,J: the interpolation canvas between those images' codes."""
    model = trained.model
    if not (model.ENCODES or model.LATENT or trained.embedding_network):
        raise ValueError(
            f"--interpolate: {type(model).__name__} has no code to interpolate (the "
            "auto-encoder, the latent-variable models and runs conditioned on embeddings have)"
        )
    if _COMPLETE_SPLIT.value is not None or _LABELS.value:
        raise ValueError("--interpolate draws from codes: drop --complete_split and --labels")
    try:
        pair = [int(i) for i in _INTERPOLATE.value]
    except ValueError:
        pair = []
    source = data.load_split(trained.config.dataset, _CODE_SPLIT.value)
    if len(pair) != 2 or not all(0 <= i < len(source) for i in pair):
        raise ValueError(
            f"--interpolate={','.join(_INTERPOLATE.value)} must be two indices of "
            f"{_CODE_SPLIT.value} (0 to {len(source) - 1})"
        )
    images = source.batch(np.asarray(pair))["image"].astype(np.int32)
    return canvases.interpolations(images, trained.code(images), _INTERPOLATION_STEPS.value)


def make_canvas(trained: TrainedModel) -> canvases.Canvas:
    """The canvas the flags ask for: an interpolation (--interpolate),
    completions of --complete_split, else what `canvases.for_model` draws of
    the model (the auto-encoder and runs conditioned on embeddings: given the
    codes of --code_split's images)."""
    if _INTERPOLATE.value:
        return _interpolation(trained)
    config, model, variables = trained.config, trained.model, trained.variables
    shape = trained.image_shape
    labels = _labels(trained)
    split = _COMPLETE_SPLIT.value or (_CODE_SPLIT.value if trained.drawn_given_codes else None)
    if split is None and _NUM_COMPLETIONS.present:
        raise ValueError(
            "--num_completions needs --complete_split (or a run drawn given codes of "
            "images, the auto-encoder's or embeddings, whose samples per image it counts)"
        )
    if split is None:
        return canvases.for_model(model, variables, shape, _NUM.value, labels)
    source = data.load_split(config.dataset, split)
    if len(source) < _NUM.value:
        raise ValueError(f"{split} has {len(source)} images, fewer than --num_samples")
    batch = source.batch(np.arange(_NUM.value))
    images = batch["image"].astype(np.int32)
    if _COMPLETE_SPLIT.value is None:
        num = _NUM_COMPLETIONS.value
        return canvases.for_model(
            model, variables, shape, num, images=images, codes=trained.code(images)
        )
    cond = None
    if trained.drawn_given_codes:
        cond = trained.code(images)
    elif labels is not None:
        cond = batch["label"].astype(np.int32)
    rows = shape[0] // 2 if _COMPLETE_ROWS.value is None else _COMPLETE_ROWS.value
    return canvases.completions(images, rows, _NUM_COMPLETIONS.value, cond)


def _save_drawing_steps(
    trained: TrainedModel, canvas: canvases.Canvas, samples: np.ndarray, output: pathlib.Path
) -> None:
    """FILE_steps.png: per sample a row, its canvas (the mean image) at
    --drawing_steps evenly spaced steps, then the drawn sample."""
    frames, shown = canvases.drawing_steps(
        trained.model, trained.variables, canvas.cond, trained.image_shape, _DRAWING_STEPS.value
    )
    rows = np.concatenate([frames, samples[:, None].astype(np.float32)], axis=1)
    path = output.with_name(f"{output.stem}_steps.png")
    save_png(path, make_grid(to_uint8(rows, trained.config.model.num_levels)))
    steps = ", ".join(map(str, shown))
    print(f"sample: the canvases at steps {steps} of {shown[-1]}, then the samples -> {path}")


def main(argv):
    program.setup(argv)
    workdir = _WORKDIR.value
    try:
        _checked_flags()
        trained = load(workdir, _STEP.value, _PARAMS.value)
        config = trained.config
        if _DATA_DIR.value is not None:
            config.dataset.data_dir = _DATA_DIR.value
        model, variables = trained.model, trained.variables
        if _DRAWING_STEPS.present and not model.DRAWS_IN_STEPS:
            raise ValueError(f"--drawing_steps: {type(model).__name__} does not draw in steps")
        rng = jax.random.key(_SEED.value)
        canvas = make_canvas(trained)
        if model.DRAWS_IN_STEPS and canvas.cond is None:
            canvas = canvases.with_latent(canvas, model, variables, rng)
        height, width, _ = trained.image_shape
        with progress_bar(total=height * width, unit="pixel", desc="sample") as bar:
            samples = canvases.draw(
                canvas,
                model,
                variables,
                trained.mesh,
                rng,
                _TEMPERATURE.value,
                _SAMPLER.value,
                on_row=lambda rows: bar.update(rows * width - bar.n),
            )
    except (ValueError, OSError) as e:
        program.fail("sample", e)
    if jax.process_index() == 0:
        output = pathlib.Path(_OUTPUT.value)
        save_png(output, canvas.grid(samples, config.model.num_levels))
        np.save(output.with_suffix(".npy"), samples.astype(np.uint8))
        print(
            f"sample: {len(samples)} images from step {trained.step} ({_SAMPLER.value} sampler) "
            f"-> {output} and {output.with_suffix('.npy')}"
        )
        if model.DRAWS_IN_STEPS:
            _save_drawing_steps(trained, canvas, samples, output)
        if _COMPLETE_SPLIT.value is not None and not model.RASTER_ORDER:
            print(f"sample: note: {NOT_THE_POSTERIOR}")


if __name__ == "__main__":
    program.start(main, stops_at_once=True)
