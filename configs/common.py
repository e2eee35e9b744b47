"""Defaults shared by every recipe; a dataset file holds only what it changes.

`get_config(arg)` in a dataset file takes "MODEL[,OPTION...]". Options:
`tiny` shrinks the same architecture so that it runs in seconds on a CPU;
`conditional` conditions the model on the dataset's class labels (recipes
that offer it); a recipe may name variants of its own (`Recipe.variants`,
e.g. `pixelcnn,cpu20`). Each dataset file has one table, `RECIPES`: per
model, one `Recipe`.
"""

import dataclasses

import ml_collections

from pixel_models import data
from pixel_models.data import splits

OPTIONS = ("tiny", "conditional")
TINY_EVAL_EXAMPLES = 256  # `tiny` evaluates the first 256 of the eval split: a second

# `tiny` sizes (`Recipe.tiny`) the recipes share: the same architectures with a
# few thousand parameters. The gated stacks' first layer shrinks to 3x3 too.
TINY = dict(hidden_dim=8, num_layers=2, output_hidden_dim=16)
TINY_GATED = TINY | dict(input_kernel_size=3)
# `cpu_chunk_pixels` of the PixelCNN and Gated PixelCNN recipes: 2 MNIST or
# CIFAR-10 images, whose activations stay in a core's 1 MB L2 cache between
# ops (README, Speed).
CONV_CPU_CHUNK_PIXELS = 2_048

TINY_PIXELCNN_PP = dict(hidden_dim=8, num_resnets=1, num_scales=2, num_mixtures=2)

# The PixelCNN++ paper's optimisation (Sec. 3; openai/pixel-cnn `train.py`):
# Adam at 1e-3 decayed by 0.999995 per step, Polyak averaging of the
# parameters (0.9995; the average is what is evaluated), no gradient clipping,
# and 8 GPUs x 16 images: a global batch of 128, which the rate and its decay
# were set for.
PIXELCNN_PP_TRAINING = dict(
    batch_size=128,
    ema_decay=0.9995,
    optimizer=dict(
        name="adam",
        learning_rate=1e-3,
        schedule="exponential",
        decay_rate=0.999995,
        grad_clip_norm=0.0,
    ),
)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One (dataset, model) entry.

    Attributes:
      model: the paper-sized hyperparameters (`config.model` fields).
      tiny: the fields the `tiny` option overrides: the same architecture,
        shrunk for tests and smoke runs.
      reference: the published result it should approach, with its source.
      cpu_chunk_pixels: on CPU, the train and eval steps take each device's
        share of a batch in chunks of at most this many pixels (0: all at
        once). Convolutional models gain from it (README, Speed); the
        PixelRNNs' row scans lose.
      conditional: the `conditional` option is offered: the model takes the
        dataset's labels as `cond` (its `num_classes` field is set).
      conditional_reference: the published result of the conditional model.
      training: top-level config fields the recipe changes from the shared
        defaults (batch_size, ema_decay, ...); a dict value updates that
        sub-config (e.g. `optimizer=dict(name="adam")`).
      variants: named options of this recipe (`MODEL,NAME`): fields changed
        after `training`, in the same form; `model=dict(...)` changes the
        architecture. Each says in a comment what it was measured to reach.
    """

    model: dict
    tiny: dict
    reference: str
    cpu_chunk_pixels: int = 0
    conditional: bool = False
    conditional_reference: str = ""
    training: dict = dataclasses.field(default_factory=dict)
    variants: dict[str, dict] = dataclasses.field(default_factory=dict)


def parse_arg(arg: str, variants: tuple[str, ...] = ()) -> tuple[str, set[str]]:
    """ "pixelcnn,tiny" -> ("pixelcnn", {"tiny"}), rejecting options that are
    neither shared (`OPTIONS`) nor among the recipe's `variants`."""
    model, *options = [part.strip() for part in arg.split(",") if part.strip()] or [""]
    known = OPTIONS + tuple(variants)
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown config option(s) {sorted(unknown)} in {arg!r}; known: {known}")
    return model, set(options)


def _update(config: ml_collections.ConfigDict, fields: dict) -> None:
    """Set top-level `fields`; a dict value updates that sub-config."""
    for field, value in fields.items():
        if isinstance(value, dict):
            config[field].update(value)
        else:
            config[field] = value


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


def get_config(
    arg: str,
    dataset_config: ml_collections.ConfigDict,
    num_levels: int,
    recipes: dict[str, Recipe],
) -> ml_collections.ConfigDict:
    """Assemble a recipe.

    Args:
      arg: "MODEL[,tiny]".
      dataset_config: from `dataset(...)`.
      num_levels: K, the number of values a subpixel takes (2 or 256).
      recipes: the dataset's table, model name -> `Recipe`.
    """
    model_name, _ = parse_arg(arg, tuple(v for r in recipes.values() for v in r.variants))
    if model_name not in recipes:
        raise ValueError(
            f"no {dataset_config.name} recipe for model {model_name!r}; "
            f"recipes: {', '.join(sorted(recipes))}"
        )
    recipe = recipes[model_name]
    _, options = parse_arg(arg, tuple(recipe.variants))
    if "conditional" in options and not recipe.conditional:
        offered = sorted(name for name, r in recipes.items() if r.conditional)
        raise ValueError(
            f"no conditional {dataset_config.name} recipe for {model_name!r}; "
            f"conditional recipes: {', '.join(offered) or 'none'}"
        )
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict(
        dict(name=model_name, num_levels=num_levels, dtype="float32", **recipe.model)
    )  # dtype: the compute dtype ("bfloat16" on GPU/TPU); parameters stay float32
    config.dataset = dataset_config
    config.reference = recipe.reference
    config.seed = 0
    # PixelRNN paper Sec. 5.2: RMSProp for every model, batch 16 (CIFAR-10);
    # learning rates "set by hand", not stated. 1e-3 is RMSProp's usual rate;
    # a recipe that measured a better one overrides it (binarized_mnist.py).
    config.batch_size = 16
    config.num_train_steps = 200_000
    config.eval_batch_size = 64  # global, like batch_size; the last batch is padded
    # On CPU the train and eval steps take each device's share of a batch in
    # chunks of at most this many pixels (0: all at once); GPUs and TPUs take
    # it whole.
    config.cpu_chunk_pixels = recipe.cpu_chunk_pixels
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
    config.conditioning = "none"
    if "conditional" in options:
        config.conditioning = "label"
        config.model.num_classes = data.get_spec(dataset_config.name).num_classes
        config.reference = recipe.conditional_reference or recipe.reference
    config.log_every_steps = 100
    config.eval_every_steps = 5_000
    config.checkpoint_every_steps = 1_000
    config.keep_checkpoints = 3
    # A grid of this many fast samples to TensorBoard and WORKDIR/samples/
    # every `sample_every_steps` (0: never).
    config.sample_every_steps = 10_000
    config.num_sample_images = 16
    _update(config, recipe.training)
    for variant in sorted(options & set(recipe.variants)):
        _update(config, recipe.variants[variant])
    if "tiny" in options:
        config.model.update(recipe.tiny)
        config.batch_size = 8
        config.num_train_steps = 20
        config.log_every_steps = 5
        config.eval_every_steps = 10
        config.checkpoint_every_steps = 10
        config.sample_every_steps = 0
        config.dataset.eval_split = splits.head(config.dataset.eval_split, TINY_EVAL_EXAMPLES)
    return config
