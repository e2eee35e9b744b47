"""CIFAR-10, 32x32x3, K=256 (test NLL in bits/dim).

PixelRNN paper (van den Oord et al. 2016) Sec. 5 and Table 5: PixelCNN with
15 residual layers of h=128 and 1024-map output layers, 3.14 bits/dim; Row
LSTM and Diagonal BiLSTM with 12 layers of h=128: 3.07 and 3.00 bits/dim.
PixelCNN++ (Salimans et al. 2017): 2.92 bits/dim. The VAE reports a bound.
"""

import ml_collections

from configs import common


def pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=128, num_layers=15, output_hidden_dim=1024)
    config.reference = "PixelRNN paper Table 5: PixelCNN 3.14 bits/dim"


# Sec. 5.2/Table 5: 12 layers of h=128 for both PixelRNNs on CIFAR-10.
def row_lstm(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=128, num_layers=12, output_hidden_dim=1024)
    config.reference = "PixelRNN paper Table 5: Row LSTM 3.07 bits/dim"


def diagonal_bilstm(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=128, num_layers=12, output_hidden_dim=1024)
    config.reference = "PixelRNN paper Table 5: Diagonal BiLSTM 3.00 bits/dim"


# The Gated PixelCNN paper (van den Oord et al. 2016b) gives 3.03 bits/dim
# (Table 1) without stating the CIFAR-10 size: we use the PixelCNN recipe's
# 15 layers of 128 maps (3x3) after a 7x7 first layer.
def gated_pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=128, num_layers=15, input_kernel_size=7, kernel_size=3, output_hidden_dim=1024
    )
    config.reference = "Gated PixelCNN paper Table 1: 3.03 bits/dim"
    if config.conditioning == "label":
        config.reference = (
            "no published class-conditional CIFAR-10 figure; compare with the unconditional "
            "3.03 bits/dim"
        )


# Sec. 3.4 of the same paper trains its auto-encoder on 32x32 ImageNet. Here:
# a code of m=10 numbers from three stride-2 3x3 convs (64, 128, 256 maps),
# and the gated decoder above at 10 layers of 64 maps.
def pixelcnn_autoencoder(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        code_dim=10,
        encoder_dim=64,
        encoder_layers=3,
        hidden_dim=64,
        num_layers=10,
        input_kernel_size=7,
        kernel_size=3,
        output_hidden_dim=512,
    )
    config.reference = (
        "no published CIFAR-10 figure (the paper's is on ImageNet); the NLL is p(x | code(x)), "
        "not comparable with p(x)"
    )


# PixelCNN++ paper Sec. 3 and openai/pixel-cnn's defaults: 3 resolutions of 5
# gated ResNet blocks per stream, 160 filters, 10 logistics, dropout 0.5, and
# the paper's optimisation (`common.pixelcnn_pp_training`: its global batch
# of 8 GPUs x 16 = 128; on fewer devices each takes a larger share, and on
# CPU it runs in chunks).
def pixelcnn_pp(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=160, num_resnets=5, num_scales=3, num_mixtures=10, dropout_rate=0.5
    )
    config.reference = "PixelCNN++ paper Table 1 (Sec. 4): 2.92 bits/dim"
    if config.conditioning == "label":
        config.reference = (
            "no published class-conditional CIFAR-10 bits/dim (the paper shows "
            "class-conditional samples); compare with the unconditional 2.92"
        )
    common.pixelcnn_pp_training(config)


# The VAE baseline (Kingma & Welling) for colour: the binarized-MNIST recipe's
# MLPs, wider (2 x 1000 units, 128 latent numbers), with PixelCNN++'s
# discretized logistic per pixel as p(x | z) (one component: the MLP's output
# is 10 numbers per pixel). It reports bounds, never an exact NLL.
def vae(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        latent_dim=128, hidden_dim=1000, num_hidden=2, output="logistic_mixture", num_mixtures=1
    )
    config.reference = (
        "no published CIFAR-10 VAE in these papers; the nearest latent-variable bound is "
        "DRAW's 4.13 bits/dim (Gated PixelCNN paper Table 1)"
    )
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.batch_size = 100


# PixelVAE (Gulrajani et al.): the VAE's Gaussian posterior and prior (128
# latent numbers, 3 strided convs of 64 maps) with a decoder of 4 Gated
# PixelCNN layers of 64 maps given z, a softmax per subpixel: few layers, as
# the paper finds, to keep z in use. Adam, batch 64. It reports bounds.
def pixel_vae(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        latent_dim=128,
        encoder_dim=64,
        encoder_layers=3,
        hidden_dim=64,
        num_layers=4,
        input_kernel_size=7,
        output_hidden_dim=256,
    )
    config.reference = (
        "no published CIFAR-10 PixelVAE in these papers; the nearest latent-variable bound is "
        "DRAW's 4.13 bits/dim (Gated PixelCNN paper Table 1)"
    )
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.batch_size = 64


RECIPES = common.by_name(
    pixelcnn,
    row_lstm,
    diagonal_bilstm,
    gated_pixelcnn,
    pixelcnn_autoencoder,
    pixelcnn_pp,
    vae,
    pixel_vae,
)
# The recipes that offer `,conditional`.
CONDITIONAL = ("gated_pixelcnn", "pixelcnn_pp")


def get_config(arg: str = "pixelcnn") -> ml_collections.ConfigDict:
    """`arg`: "MODEL[,tiny][,conditional]"; `conditional` for the Gated
    PixelCNN and PixelCNN++."""
    dataset = common.dataset("cifar10", train_split="train[:45000]", eval_split="train[45000:]")
    return common.assemble(arg, dataset, num_levels=256, recipes=RECIPES, conditional=CONDITIONAL)
