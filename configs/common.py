"""Defaults shared by every recipe; a dataset file holds only what it changes.

`get_config(arg)` in a dataset file takes "MODEL[,OPTION...]"; the option
`tiny` shrinks the same architecture so that it runs in seconds on a CPU.
"""

import ml_collections

# The architecture shrunk for tests and smoke runs, per model.
TINY_MODELS = {
    "pixelcnn": dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
    "row_lstm": dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
    "diagonal_bilstm": dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
}
OPTIONS = ("tiny",)

# XLA:CPU runs a model one op at a time, each over the whole batch: a
# convolutional model's activations then fall out of the cache between ops
# once the batch is large. In chunks of 8 binarized-MNIST images (6,272
# pixels), the PixelCNN benchmark's eval step at batch 32 ran 1.2-1.35x
# faster and its train step, accumulating the gradient, 1.1x; chunks of 16
# did as well in eval, less in training; batches of 4 evaluated slower
# (README, Speed). The PixelRNNs' row scans lost a third of their eval speed.
CPU_CHUNK_PIXELS = {"pixelcnn": 8_192}


def parse_arg(arg: str) -> tuple[str, set[str]]:
    """ "pixelcnn,tiny" -> ("pixelcnn", {"tiny"}), rejecting unknown options."""
    model, *options = [part.strip() for part in arg.split(",") if part.strip()] or [""]
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown config option(s) {sorted(unknown)} in {arg!r}; known: {OPTIONS}")
    return model, set(options)


def dataset(name: str, train_split: str, eval_split: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            name=name,
            source="files",  # "files": the original file formats; "tfds": TFDS builders
            data_dir=ml_collections.FieldReference(None, field_type=str),
            train_split=train_split,
            eval_split=eval_split,
        )
    )


def get_config(
    arg: str,
    dataset_config: ml_collections.ConfigDict,
    num_levels: int,
    models: dict[str, dict],
    reference: dict[str, str],
) -> ml_collections.ConfigDict:
    """Assemble a recipe.

    Args:
      arg: "MODEL[,tiny]".
      dataset_config: from `dataset(...)`.
      num_levels: K, the number of values a subpixel takes (2 or 256).
      models: paper-sized hyperparameters per model name.
      reference: the published result each model should approach, with its source.
    """
    model_name, options = parse_arg(arg)
    if model_name not in models:
        raise ValueError(
            f"no {dataset_config.name} recipe for model {model_name!r}; "
            f"recipes: {', '.join(sorted(models))}"
        )
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict(
        dict(name=model_name, num_levels=num_levels, dtype="float32", **models[model_name])
    )  # dtype: the compute dtype ("bfloat16" on GPU/TPU); parameters stay float32
    config.dataset = dataset_config
    config.reference = reference[model_name]
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
    config.cpu_chunk_pixels = CPU_CHUNK_PIXELS.get(model_name, 0)
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
    config.log_every_steps = 100
    config.eval_every_steps = 5_000
    config.checkpoint_every_steps = 1_000
    config.keep_checkpoints = 3
    if "tiny" in options:
        config.model.update(TINY_MODELS[model_name])
        config.batch_size = 8
        config.num_train_steps = 20
        config.log_every_steps = 5
        config.eval_every_steps = 10
        config.checkpoint_every_steps = 10
        config.dataset.eval_split += "[:256]"  # periodic evaluation in a second
    return config
