"""ImageNet 64x64x3, K=256 (validation NLL in bits/dim).

Chrabaszcz et al. 2017's 64x64 files, `imagenet64/train_data_batch_{1..10}.npz`
and `imagenet64/val_data.npz` (about 15 GB of training images, read by rows):
the same splits, evaluation on `validation` and caveats as configs/imagenet32.py.
"""

import ml_collections

from configs import common, imagenet32


# Gated PixelCNN paper Table 2: 3.57 bits/dim on 64x64 validation (3.48 on
# train), with the model and training of its 32x32 recipe (Sec. 3.1 sizes
# both ImageNets alike; configs/imagenet32.py says what it leaves out).
def gated_pixelcnn(config: ml_collections.ConfigDict) -> None:
    imagenet32.gated_pixelcnn(config)
    config.reference = "Gated PixelCNN paper Table 2: 3.57 bits/dim (64x64 validation)"
    if config.conditioning == "label":
        config.reference = (
            "no published class-conditional figure (Gated PixelCNN paper Sec. 3.2 shows "
            "samples); compare with the unconditional 3.57 bits/dim"
        )


# PixelRNN paper Sec. 3.6 and Fig. 7: the multi-scale PixelRNN, an
# unconditional PixelRNN of the 32x32 image x[::2, ::2] and a conditional one
# of the 64x64 image given it. Table 6: 3.63 bits/dim on 64x64 validation
# (3.57 on train); Fig. 7 puts the multi-scale and the single-scale 64x64
# models at "similar" log-likelihood. Left out: s (32 here), every size of
# both networks and of the upsampling network (here Row LSTMs of the 32x32
# row_lstm recipe's 12 layers of h=128, and its batch of 64; c = 2h), the
# learning rate and the number of updates.
def multiscale_pixelrnn(config: ml_collections.ConfigDict) -> None:
    imagenet32.multiscale_pixelrnn(config)
    config.reference = "PixelRNN paper Table 6: 3.63 bits/dim (64x64 validation)"


RECIPES = common.by_name(gated_pixelcnn, multiscale_pixelrnn)
# The recipes that offer `,conditional`.
CONDITIONAL = ("gated_pixelcnn",)


def get_config(arg: str = "gated_pixelcnn") -> ml_collections.ConfigDict:
    """`arg`: "MODEL[,tiny][,conditional]"; `conditional` for the Gated PixelCNN."""
    dataset = common.dataset("imagenet64", train_split="train", eval_split="validation")
    return common.assemble(arg, dataset, num_levels=256, recipes=RECIPES, conditional=CONDITIONAL)
