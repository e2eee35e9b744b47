"""What every recipe shares: the options of `get_config(arg)`, the defaults
every config starts from, and the `tiny` run.

A dataset file's `get_config(arg)` takes "MODEL[,OPTION...]" (`parse_arg`):
`tiny` shrinks the same architecture so that it runs in seconds on a CPU;
`conditional` conditions the model on the dataset's class labels, and
`embedding` on each image's embedding by a trained network (recipes that
offer them). It starts from `defaults(...)`, lets the model's recipe (a
function of that file) set the model and whatever else it changes, and
shrinks the run for `tiny` (`shrink`).
"""

import dataclasses
import re
from collections.abc import Callable, Collection

import ml_collections

from pixel_models import data, likelihood
from pixel_models.data import splits

TINY_EVAL_EXAMPLES = 256  # `tiny` evaluates the first 256 of the eval split: a second

# The `tiny` option caps each of these sizes the model has at this value (a
# model keeps a smaller one): the same architectures, with a few thousand
# parameters.
TINY_SIZES = dict(
    hidden_dim=8,
    num_layers=2,
    output_hidden_dim=16,
    input_kernel_size=3,  # the gated stacks' first layer
    encoder_dim=8,  # the auto-encoder's
    encoder_layers=2,
    num_resnets=1,  # PixelCNN++'s
    num_scales=2,
    num_mixtures=2,
    latent_dim=4,  # the VAE's
    num_hidden=1,
    num_steps=3,  # DRAW's
    z_dim=2,
)


@dataclasses.dataclass(frozen=True)
class Arg:
    """The argument of `get_config`, "MODEL[,tiny][,conditional|,embedding]", parsed.

    Attributes:
      model: the recipe, named after its model (`config.model.name`).
      tiny: the same architecture shrunk, and a run of seconds (`shrink`).
      conditional: the model takes the dataset's labels as `cond`.
      embedding: the model takes each image's embedding by the dataset's
        embedding network (`EmbeddingNetwork`) as `cond`.
    """

    model: str
    tiny: bool = False
    conditional: bool = False
    embedding: bool = False


@dataclasses.dataclass(frozen=True)
class EmbeddingNetwork:
    """A trained network of a dataset whose embeddings `,embedding` recipes
    are conditioned on (`pixel_models.embeddings`).

    Attributes:
      workdir: its run (a model with a code of an image), relative to the
        folder the programs run in.
      dim: the size of its code.
      recipes: the recipes that offer `,embedding` (models that take a float
        embedding as `cond`).
    """

    workdir: str
    dim: int
    recipes: tuple[str, ...]


def parse_arg(
    arg: str,
    dataset: str,
    recipes: Collection[str],
    conditional: Collection[str] = (),
    embedded: Collection[str] = (),
) -> Arg:
    """ "pixelcnn,tiny" -> Arg("pixelcnn", tiny=True), refusing a model with
    no recipe in `recipes`, an unknown option, `conditional` for a recipe
    not in `conditional`, `embedding` for one not in `embedded`, and both
    (`dataset` names the file in the messages)."""
    model, *options = [part.strip() for part in arg.split(",") if part.strip()] or [""]
    known = tuple(field.name for field in dataclasses.fields(Arg) if field.type is bool)
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown config option(s) {sorted(unknown)} in {arg!r}; known: {known}")
    if model not in recipes:
        raise ValueError(
            f"no {dataset} recipe for model {model!r}; recipes: {', '.join(sorted(recipes))}"
        )
    if "conditional" in options and model not in conditional:
        raise ValueError(
            f"no conditional {dataset} recipe for {model!r}; "
            f"conditional recipes: {', '.join(sorted(conditional)) or 'none'}"
        )
    if "embedding" in options and model not in embedded:
        raise ValueError(
            f"no {dataset} recipe for {model!r} conditioned on embeddings; "
            f"recipes with `,embedding`: {', '.join(sorted(embedded)) or 'none'}"
        )
    if {"conditional", "embedding"} <= set(options):
        raise ValueError(f"{arg!r}: conditional (labels) or embedding, not both")
    return Arg(model, **{option: True for option in options})


def published(reference: str) -> tuple[float, str] | None:
    """The published figure that a recipe's `reference` names, `(value,
    unit)` with unit "nats" (per image) or "bits/dim": its first "X nats" or
    "X bits/dim" ("PixelRNN paper Table 4: Row LSTM 80.54 nats", "DRAW paper
    Table 2: 80.97 nats (a bound; ...)"). None for a recipe with no published
    figure of its own ("no published ...", whatever figures of other models
    it cites after that)."""
    match = re.search(r"(\d+(?:\.\d+)?) (nats|bits/dim)", reference)
    if reference.startswith("no published") or match is None:
        return None
    return float(match.group(1)), match.group(2)


def published_in(reference: str, unit: str, image_shape: tuple[int, ...]) -> float | None:
    """The published figure in `reference` (`published`) in `unit`: "nats"
    per image or "bits/dim" over images of `image_shape`
    (`likelihood.bits_per_dim`), converting a figure given in the other one;
    None if it names none."""
    figure = published(reference)
    if figure is None:
        return None
    value, given = figure
    if given == unit:
        return value
    to_bits = likelihood.bits_per_dim(1.0, image_shape)
    return value * to_bits if unit == "bits/dim" else value / to_bits


def dataset(name: str, train_split: str, eval_split: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            name=name,
            source="files",  # "files": the original file formats; "tfds": TFDS builders
            data_dir=ml_collections.FieldReference(None, field_type=str),
            # Where compressed ImageNet `.npz` members are unpacked once (None:
            # $PIXEL_MODELS_CACHE_DIR, else ~/.cache/pixel_models).
            cache_dir=ml_collections.FieldReference(None, field_type=str),
            train_split=train_split,
            eval_split=eval_split,
        )
    )


def defaults(
    arg: Arg, dataset_config: ml_collections.ConfigDict, num_levels: int
) -> ml_collections.ConfigDict:
    """The config every recipe starts from: the model `arg.model` without
    its sizes, on `dataset_config` (`dataset(...)`) of images whose subpixels
    take `num_levels` values (K: 2 or 256), conditioned on the labels with
    `arg.conditional`. The recipe sets the sizes and `reference`."""
    config = ml_collections.ConfigDict()
    # dtype: the compute dtype ("bfloat16" on GPU/TPU); parameters stay float32.
    config.model = ml_collections.ConfigDict(
        dict(name=arg.model, num_levels=num_levels, dtype="float32")
    )
    config.dataset = dataset_config
    config.seed = 0
    # PixelRNN paper Sec. 5.2: RMSProp for every model, batch 16 (CIFAR-10);
    # learning rates "set by hand", not stated. 1e-3 is RMSProp's usual rate;
    # a recipe that measured a better one overrides it (binarized_mnist.py).
    config.batch_size = 16
    config.num_train_steps = 200_000
    config.eval_batch_size = 64  # global, like batch_size; the last batch is padded
    # On CPU the train and eval steps take each device's share of a batch in
    # chunks of at most this many pixels (0: all at once; None: the model's
    # own, `pixel_models.training.steps.cpu_chunk_pixels`); GPUs and TPUs
    # take it whole.
    config.cpu_chunk_pixels = ml_collections.FieldReference(None, field_type=int)
    config.optimizer = ml_collections.ConfigDict(
        dict(
            name="rmsprop",
            learning_rate=1e-3,
            schedule="constant",  # constant | cosine | exponential (see optimizers.py)
            warmup_steps=0,
            # The summed-NLL gradient norm is ~100, so this always rescales:
            # RMSProp is scale-free, so it only caps spikes.
            grad_clip_norm=1.0,
        )
    )
    config.ema_decay = 0.0  # > 0 keeps a Polyak average of the parameters and evaluates it
    # "label": the model is conditioned on the batch's class labels, p(x | label).
    # "embedding": on each image's embedding by a trained network,
    # p(x | embedding), `config.embedding` (`assemble` sets it).
    config.conditioning = "label" if arg.conditional else "embedding" if arg.embedding else "none"
    if arg.conditional:
        config.model.num_classes = data.get_spec(dataset_config.name).num_classes
    config.log_every_steps = 100
    config.eval_every_steps = 5_000
    config.checkpoint_every_steps = 1_000
    config.keep_checkpoints = 3
    # A grid of this many fast samples to TensorBoard and WORKDIR/samples/
    # every `sample_every_steps` (0: never).
    config.sample_every_steps = 10_000
    config.num_sample_images = 16
    return config


def pixelcnn_pp_training(config: ml_collections.ConfigDict) -> None:
    """The PixelCNN++ paper's optimisation (Sec. 3; openai/pixel-cnn
    `train.py`): Adam at 1e-3 decayed by 0.999995 per step, Polyak averaging
    of the parameters (0.9995; the average is what is evaluated), no gradient
    clipping, and 8 GPUs x 16 images: a global batch of 128, which the rate
    and its decay were set for."""
    config.batch_size = 128
    config.ema_decay = 0.9995
    config.optimizer.update(
        name="adam",
        learning_rate=1e-3,
        schedule="exponential",
        decay_rate=0.999995,
        grad_clip_norm=0.0,
    )


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The `tiny` run of a recipe: its model with every size capped at
    `TINY_SIZES`, trained for 20 steps of 8 images and evaluated on the first
    `TINY_EVAL_EXAMPLES` of its eval split, with no sample grids and no EMA
    (an average over a few steps is no better than their last)."""
    for field, tiny in TINY_SIZES.items():
        if field in config.model:
            config.model[field] = min(config.model[field], tiny)
    config.batch_size = 8
    config.num_train_steps = 20
    config.log_every_steps = 5
    config.eval_every_steps = 10
    config.checkpoint_every_steps = 10
    config.sample_every_steps = 0
    config.ema_decay = 0.0
    config.dataset.eval_split = splits.head(config.dataset.eval_split, TINY_EVAL_EXAMPLES)
    return config


Recipe = Callable[[ml_collections.ConfigDict], None]


def by_name(*recipes: Recipe) -> dict[str, Recipe]:
    """A dataset file's table of recipes: each function under its name (the
    model's registry name)."""
    return {recipe.__name__: recipe for recipe in recipes}


def assemble(
    arg: str,
    dataset_config: ml_collections.ConfigDict,
    num_levels: int,
    recipes: dict[str, Recipe],
    conditional: Collection[str] = (),
    embedding: EmbeddingNetwork | None = None,
) -> ml_collections.ConfigDict:
    """The config `arg` names: the `defaults`, then the model's recipe, then
    `shrink` for `tiny`; `embedding`, the dataset's embedding network, if
    it has one."""
    embedded = embedding.recipes if embedding else ()
    parsed = parse_arg(arg, dataset_config.name, recipes, conditional, embedded)
    config = defaults(parsed, dataset_config, num_levels)
    if parsed.embedding:
        config.embedding = ml_collections.ConfigDict(
            dict(workdir=embedding.workdir, dim=embedding.dim)
        )
    recipes[parsed.model](config)
    return shrink(config) if parsed.tiny else config
