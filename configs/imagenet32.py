"""ImageNet 32x32x3, K=256 (validation NLL in bits/dim).

The files are Chrabaszcz et al. 2017's downsampled ImageNet: 1,281,167
training images in `imagenet32/train_data_batch_{1..10}.npz` and the 50,000
ILSVRC validation images in `imagenet32/val_data.npz`. The release has no
test split (ILSVRC's test labels were never published), and the papers report
validation NLL ("NLL Validation (Train)", PixelRNN paper Table 6, Gated
PixelCNN paper Table 2): recipes train on all of `train` and evaluate on
`validation`. The papers' figures come from van den Oord et al.'s own
downsampling of the same images (TFDS `downsampled_imagenet`), so they are
targets to approach, not the same test.

The batches are read a row at a time, never held in host memory; a
compressed `.npz` is unpacked once into `dataset.cache_dir` (None:
$PIXEL_MODELS_CACHE_DIR, else ~/.cache/pixel_models).
"""

import ml_collections

from configs import common


# PixelRNN paper Table 6: 3.86 bits/dim on 32x32 validation (3.83 on train)
# for its PixelRNN. Sizes: those of its CIFAR-10 PixelRNNs (Sec. 5.2, Table
# 5), 12 layers of h=128. Batch 64, "as large as allowed by the GPU memory"
# (Sec. 5.2). Left out: the learning rate (set by hand) and the number of
# updates.
def row_lstm(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=128, num_layers=12, output_hidden_dim=1024)
    config.reference = "PixelRNN paper Table 6: 3.86 bits/dim (32x32 validation)"
    config.batch_size = 64


# PixelRNN paper Sec. 3.6: the design of its 64x64 multi-scale PixelRNN
# (configs/imagenet64.py) at 32x32: an unconditional PixelRNN of the 16x16
# image x[::2, ::2] and a conditional one of the 32x32 image given it, both
# Row LSTMs of the row_lstm recipe's size and training. The paper has no
# 32x32 multi-scale model.
def multiscale_pixelrnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        rnn="row_lstm", scale=2, hidden_dim=128, num_layers=12, output_hidden_dim=1024
    )
    config.reference = (
        "no published 32x32 multi-scale PixelRNN; PixelRNN paper Table 6: 3.86 bits/dim "
        "(32x32 validation) for its single-scale PixelRNN"
    )
    config.batch_size = 64


# Gated PixelCNN paper Table 2: 3.83 bits/dim on 32x32 validation (3.77 on
# train). Sec. 3.1, for both ImageNets: 20 layers of 384 maps with 5x5
# filters, 200K synchronous updates at a global batch of 128 (32 GPUs). Left
# out: the optimiser and learning rate, the first layer's filter (7x7 here,
# as for CIFAR-10) and the output stack's width (1024 here). Sec. 3.2
# conditions it on the 1000 classes; no table gives that figure.
def gated_pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=384, num_layers=20, input_kernel_size=7, kernel_size=5, output_hidden_dim=1024
    )
    config.reference = "Gated PixelCNN paper Table 2: 3.83 bits/dim (32x32 validation)"
    if config.conditioning == "label":
        config.reference = (
            "no published class-conditional figure (Gated PixelCNN paper Sec. 3.2 shows "
            "samples); compare with the unconditional 3.83 bits/dim"
        )
    config.batch_size = 128


RECIPES = common.by_name(row_lstm, multiscale_pixelrnn, gated_pixelcnn)
# The recipes that offer `,conditional`.
CONDITIONAL = ("gated_pixelcnn",)


def get_config(arg: str = "gated_pixelcnn") -> ml_collections.ConfigDict:
    """`arg`: "MODEL[,tiny][,conditional]"; `conditional` for the Gated PixelCNN."""
    dataset = common.dataset("imagenet32", train_split="train", eval_split="validation")
    return common.assemble(arg, dataset, num_levels=256, recipes=RECIPES, conditional=CONDITIONAL)
