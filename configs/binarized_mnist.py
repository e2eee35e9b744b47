"""Binarized MNIST (Larochelle & Murray 2011 fixed binarization), 28x28x1, K=2.

Recipes from van den Oord et al. 2016, "Pixel Recurrent Neural Networks"
(PixelRNN paper), Table 4 (test NLL in nats).
"""

import ml_collections

from configs import common

# The paper set its rates by hand, "the highest values that allowed fast
# convergence", without stating them. Sweep, paper PixelCNN, RMSProp,
# batch 16, 600 steps, validation[:2000] nats: 3e-4 101.3, 1e-3 98.8,
# 3e-3 97.0, 1e-2 97.2 (`--config.optimizer.learning_rate=LR
# --config.num_train_steps=600`). 3e-3: the best, and below where it turns.
RMSPROP_LEARNING_RATE = 3e-3


# The paper gives no size for its MNIST PixelCNN; this is the size of its
# 7-layer, h=16 MNIST PixelRNN.
def pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=16, num_layers=7, output_hidden_dim=32)
    config.reference = "PixelRNN paper Table 4: PixelCNN 81.30 nats"
    config.optimizer.learning_rate = RMSPROP_LEARNING_RATE


# Sec. 5.3: "7 layers ... 16 units" for the MNIST PixelRNNs.
def row_lstm(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=16, num_layers=7, output_hidden_dim=32)
    config.reference = "PixelRNN paper Table 4: Row LSTM 80.54 nats"
    config.optimizer.learning_rate = RMSPROP_LEARNING_RATE


def diagonal_bilstm(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=16, num_layers=7, output_hidden_dim=32)
    config.reference = "PixelRNN paper Table 4: Diagonal BiLSTM 79.20 nats"
    config.optimizer.learning_rate = RMSPROP_LEARNING_RATE


# The Gated PixelCNN paper reports no binarized-MNIST model: p=32 maps, 7
# layers of 3x3 (the size of the PyTorch peer the benchmark compares with),
# after a 7x7 first layer like the PixelCNN's.
def gated_pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=32, num_layers=7, input_kernel_size=7, kernel_size=3, output_hidden_dim=64
    )
    config.reference = (
        "no published binarized-MNIST Gated PixelCNN; PixelRNN paper Table 4: PixelCNN 81.30, "
        "Diagonal BiLSTM 79.20 nats"
    )
    config.optimizer.learning_rate = RMSPROP_LEARNING_RATE


# Not in the PixelCNN++ paper. At K=2 each component's two bins split the
# line at the midpoint, so a mixture is a Bernoulli like any other: one
# component suffices. A smaller network (3 resolutions, 28/14/7, of 2 blocks
# with 32 filters) and the paper's optimisation.
def pixelcnn_pp(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=32, num_resnets=2, num_scales=3, num_mixtures=1, dropout_rate=0.5
    )
    config.reference = (
        "no published binarized-MNIST PixelCNN++; PixelRNN paper Table 4: PixelCNN 81.30, "
        "Diagonal BiLSTM 79.20 nats"
    )
    common.pixelcnn_pp_training(config)


# PixelRNN paper Sec. 3.6: an unconditional PixelRNN of the 14x14 image
# x[::2, ::2] and a conditional one of the 28x28 image given it. The paper
# uses it on 64x64 ImageNet only: Row LSTMs of the MNIST PixelRNNs' size
# (Sec. 5.3: 7 layers, h=16) for both networks.
def multiscale_pixelrnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(rnn="row_lstm", scale=2, hidden_dim=16, num_layers=7, output_hidden_dim=32)
    config.reference = (
        "no published binarized-MNIST multi-scale PixelRNN; PixelRNN paper Table 4: Row LSTM "
        "80.54 nats"
    )
    config.optimizer.learning_rate = RMSPROP_LEARNING_RATE


# Kingma & Welling's VAE at the size of the IWAE paper's one-stochastic-layer
# model (Burda et al. 2016, Sec. 5): 2 tanh layers of 200 units each way, 50
# latent numbers, Adam at 1e-3, batch 20. Its published figure is the IWAE
# paper's estimate of log p(x) with k=5,000 importance samples.
def vae(config: ml_collections.ConfigDict) -> None:
    config.model.update(latent_dim=50, hidden_dim=200, num_hidden=2)
    config.reference = "IWAE paper Table 1: VAE, 1 stochastic layer, 86.76 nats"
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.batch_size = 20


# PixelVAE (Gulrajani et al.): the VAE's 50 latent numbers, a 2-layer strided
# conv encoder, and a Gated PixelCNN decoder of only 3 layers (p=32), the
# shallow decoder that the paper finds keeps z in use on MNIST. Trained as the
# VAE is (Adam, batch 20).
def pixel_vae(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        latent_dim=50,
        encoder_dim=32,
        encoder_layers=2,
        hidden_dim=32,
        num_layers=3,
        input_kernel_size=7,
        output_hidden_dim=64,
    )
    config.reference = "PixelVAE paper Table 1: 79.66 nats (a bound)"
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.batch_size = 20


# DRAW (Gregor et al.) at the paper's MNIST size (its Table 3): 64 glimpses,
# LSTMs of 256 units, 100 latent numbers per step, 2x2 read and 5x5 write
# attention. The `draw_attention` sweep adds the variant without attention
# (read_size=write_size=0), the paper's other figure. Adam, batch 100.
def draw(config: ml_collections.ConfigDict) -> None:
    config.model.update(num_steps=64, z_dim=100, hidden_dim=256, read_size=2, write_size=5)
    config.reference = "DRAW paper Table 2: 80.97 nats (a bound; 87.40 without attention)"
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.batch_size = 100


RECIPES = common.by_name(
    pixelcnn,
    row_lstm,
    diagonal_bilstm,
    gated_pixelcnn,
    pixelcnn_pp,
    multiscale_pixelrnn,
    vae,
    pixel_vae,
    draw,
)
CONDITIONAL = ()  # no labels: no recipe offers `,conditional`

# `,embedding` (the Gated PixelCNN paper's conditioning on a trained
# network's top layer): the shipped VAE's code of the image, the posterior
# mean of its 50 latent numbers. For the models that take a float `cond`.
EMBEDDING = common.EmbeddingNetwork(
    "pretrained/binarized_mnist/vae", dim=50, recipes=("gated_pixelcnn", "pixelcnn_pp")
)


def get_config(arg: str = "pixelcnn") -> ml_collections.ConfigDict:
    """`arg`: "MODEL[,tiny][,embedding]"."""
    dataset = common.dataset("binarized_mnist", train_split="train", eval_split="validation")
    return common.assemble(arg, dataset, 2, RECIPES, conditional=CONDITIONAL, embedding=EMBEDDING)


# The `cpu20` sweep's runs: the steps that about 20 minutes of one core of this
# 2-core CPU allow (17-21 measured), the learning rate decayed to 0 over them
# (cosine), and one evaluation at the end.
CPU20 = {"optimizer.schedule": "cosine", "eval_every_steps": 0, "sample_every_steps": 0}

ZOO = {
    "optimizer.schedule": "cosine",
    "eval_every_steps": 4_000,
    "checkpoint_every_steps": 4_000,
    "keep_checkpoints": 20,
    "sample_every_steps": 0,
}

# Sweeps (`python -m experiments.sweep --config=configs/binarized_mnist.py:NAME`).
SWEEPS = {
    # the README's Results: each 20-minute run once (--parallel=2: a core each, as
    # they were measured).
    "cpu20": [
        # Twice as wide, Adam at 2e-3: 87.94 test nats; 1,133 CPU seconds
        # (the README's Results; docs/measurements.md has the others tried).
        {
            "config": "pixelcnn",
            "num_train_steps": 22_000,
            **CPU20,
            "model.hidden_dim": 32,
            "model.output_hidden_dim": 64,
            "optimizer.name": "adam",
            "optimizer.learning_rate": 2e-3,
        },
        # 82.94 test nats; 1,046 CPU seconds (the README's Results).
        {"config": "row_lstm", "num_train_steps": 15_000, **CPU20},
        # 82.54 test nats; 1,217 CPU seconds (the README's Results).
        {"config": "diagonal_bilstm", "num_train_steps": 6_000, **CPU20},
    ],
    # The zoo's long runs (issue 23; pretrained/binarized_mnist/, docs/zoo.md):
    # the recipes, their learning rate decayed to 0 over the run by a cosine,
    # evaluated on validation every 4,000 steps with every evaluated
    # checkpoint kept, so that `experiments.export --checkpoint_step=best`
    # can choose one. Each ran alone on one pinned core (`taskset -c 1`).
    # The PixelCNN, about 3 times as fast a step, ran 3 times the steps in
    # about the same CPU time, evaluated every 8,000. The Gated PixelCNN, whose
    # step takes about 5 times the PixelCNN's, 32,000 steps. The VAE beside them:
    # about 48 epochs (the IWAE paper trains 3,280), evaluated every 20,000.
    "zoo": [
        {"config": model, "num_train_steps": steps, **ZOO}
        for model, steps in (
            ("row_lstm", 40_000),
            ("diagonal_bilstm", 40_000),
            ("gated_pixelcnn", 32_000),
        )
    ]
    + [
        {
            "config": "pixelcnn",
            "num_train_steps": 120_000,
            **ZOO,
            "eval_every_steps": 8_000,
            "checkpoint_every_steps": 8_000,
        },
        {
            "config": "vae",
            "num_train_steps": 120_000,
            **ZOO,
            "eval_every_steps": 20_000,
            "checkpoint_every_steps": 10_000,
        },
    ],
    # DRAW with and without attention (the DRAW paper's Table 2 pair).
    "draw_attention": [
        {"config": "draw"},
        {
            "config": "draw",
            "model.read_size": 0,
            "model.write_size": 0,
            "reference": "DRAW paper Table 2: 87.40 nats without attention (a bound)",
        },
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
