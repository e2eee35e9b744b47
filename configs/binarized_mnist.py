"""Binarized MNIST (Larochelle & Murray 2011 fixed binarization), 28x28x1, K=2.

Recipes from van den Oord et al. 2016, "Pixel Recurrent Neural Networks"
(PixelRNN paper), Table 4 (test NLL in nats).
"""

from configs import common

# The paper set its rates by hand, "the highest values that allowed fast
# convergence", without stating them. Sweep, paper PixelCNN, RMSProp,
# batch 16, 600 steps, validation[:2000] nats: 3e-4 101.3, 1e-3 98.8,
# 3e-3 97.0, 1e-2 97.2 (`--config.optimizer.learning_rate=LR
# --config.num_train_steps=600`). 3e-3: the best, and below where it turns.
RMSPROP_TRAINING = dict(optimizer=dict(learning_rate=3e-3))


def cpu20(num_train_steps: int) -> dict:
    """The `cpu20` variant: the steps that about 20 minutes of one core of
    this 2-core CPU allow (17-21 measured), the learning rate decayed to 0
    over them (cosine), and one evaluation at the end. README, Results, has
    what each reached."""
    return dict(
        num_train_steps=num_train_steps,
        optimizer=dict(schedule="cosine"),
        eval_every_steps=0,
        sample_every_steps=0,
    )


RECIPES = {
    # The paper gives no size for its MNIST PixelCNN; this is the size of its
    # 7-layer, h=16 MNIST PixelRNN.
    "pixelcnn": common.Recipe(
        model=dict(hidden_dim=16, num_layers=7, output_hidden_dim=32),
        tiny=common.TINY,
        reference="PixelRNN paper Table 4: PixelCNN 81.30 nats",
        cpu_chunk_pixels=common.CONV_CPU_CHUNK_PIXELS,
        training=RMSPROP_TRAINING,
        # Twice as wide, Adam at 2e-3: 87.94 test nats; 1,133 CPU seconds
        # (README, Results; docs/measurements.md has the others tried).
        variants=dict(
            cpu20=cpu20(22_000)
            | dict(
                model=dict(hidden_dim=32, output_hidden_dim=64),
                optimizer=dict(name="adam", learning_rate=2e-3, schedule="cosine"),
            )
        ),
    ),
    # Sec. 5.3: "7 layers ... 16 units" for the MNIST PixelRNNs.
    "row_lstm": common.Recipe(
        model=dict(hidden_dim=16, num_layers=7, output_hidden_dim=32),
        tiny=common.TINY,
        reference="PixelRNN paper Table 4: Row LSTM 80.54 nats",
        training=RMSPROP_TRAINING,
        # 82.94 test nats; 1,046 CPU seconds (README, Results).
        variants=dict(cpu20=cpu20(15_000)),
    ),
    "diagonal_bilstm": common.Recipe(
        model=dict(hidden_dim=16, num_layers=7, output_hidden_dim=32),
        tiny=common.TINY,
        reference="PixelRNN paper Table 4: Diagonal BiLSTM 79.20 nats",
        training=RMSPROP_TRAINING,
        # 82.54 test nats; 1,217 CPU seconds (README, Results).
        variants=dict(cpu20=cpu20(6_000)),
    ),
    # The Gated PixelCNN paper reports no binarized-MNIST model: p=32 maps, 7
    # layers of 3x3 (the size of the PyTorch peer the benchmark compares
    # with), after a 7x7 first layer like the PixelCNN's.
    "gated_pixelcnn": common.Recipe(
        model=dict(
            hidden_dim=32, num_layers=7, input_kernel_size=7, kernel_size=3, output_hidden_dim=64
        ),
        tiny=common.TINY_GATED,
        reference="no published binarized-MNIST Gated PixelCNN; PixelRNN paper Table 4: "
        "PixelCNN 81.30, Diagonal BiLSTM 79.20 nats",
        cpu_chunk_pixels=common.CONV_CPU_CHUNK_PIXELS,
        training=RMSPROP_TRAINING,
    ),
    # Not in the PixelCNN++ paper. At K=2 each component's two bins split the
    # line at the midpoint, so a mixture is a Bernoulli like any other: one
    # component suffices. A smaller network (3 resolutions, 28/14/7, of 2
    # blocks with 32 filters) and the paper's optimisation.
    "pixelcnn_pp": common.Recipe(
        model=dict(hidden_dim=32, num_resnets=2, num_scales=3, num_mixtures=1, dropout_rate=0.5),
        tiny=common.TINY_PIXELCNN_PP | dict(num_mixtures=1),
        reference="no published binarized-MNIST PixelCNN++; PixelRNN paper Table 4: "
        "PixelCNN 81.30, Diagonal BiLSTM 79.20 nats",
        cpu_chunk_pixels=8_192,  # 8 images
        training=common.PIXELCNN_PP_TRAINING,
    ),
    # PixelRNN paper Sec. 3.6: an unconditional PixelRNN of the 14x14 image
    # x[::2, ::2] and a conditional one of the 28x28 image given it. The
    # paper uses it on 64x64 ImageNet only: Row LSTMs of the MNIST PixelRNNs'
    # size (Sec. 5.3: 7 layers, h=16) for both networks.
    "multiscale_pixelrnn": common.Recipe(
        model=dict(rnn="row_lstm", scale=2, hidden_dim=16, num_layers=7, output_hidden_dim=32),
        tiny=common.TINY,
        reference="no published binarized-MNIST multi-scale PixelRNN; PixelRNN paper "
        "Table 4: Row LSTM 80.54 nats",
        training=RMSPROP_TRAINING,
    ),
}


def get_config(arg: str = "pixelcnn"):
    return common.get_config(
        arg,
        common.dataset("binarized_mnist", train_split="train", eval_split="validation"),
        num_levels=2,
        recipes=RECIPES,
    )


# Sweeps (`python -m experiments.sweep --config=configs/binarized_mnist.py:NAME`).
SWEEPS = {
    # README, Results: each `cpu20` recipe once.
    "cpu20": [
        {"config": f"{model},cpu20"} for model in ("pixelcnn", "row_lstm", "diagonal_bilstm")
    ],
    # Reproducibility: 3 seeds x 2 models, short runs of the recipes.
    "seeds": [
        {"config": model, "seed": seed, "num_train_steps": steps}
        for model, steps in (("pixelcnn", 2_000), ("row_lstm", 1_000))
        for seed in range(3)
    ],
}


def get_sweep(arg: str) -> list[dict] | None:
    """The sweep named `arg`, or None: `arg` is then a recipe."""
    return SWEEPS.get(arg)
