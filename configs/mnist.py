"""MNIST, 28x28x1, 8-bit grey levels (K=256); no validation split of its own,
so the last 10,000 training images are held out.

The PixelRNN paper reports no 8-bit MNIST result; the sizes follow its
binarized-MNIST models, and results are stated in bits/dim.
"""

import ml_collections

from configs import common


def pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(hidden_dim=16, num_layers=7, output_hidden_dim=32)
    config.reference = "no published 8-bit MNIST PixelCNN figure; compare bits/dim runs"


# Sizes as on binarized MNIST (configs/binarized_mnist.py); `,conditional`
# conditions on the digit class.
def gated_pixelcnn(config: ml_collections.ConfigDict) -> None:
    config.model.update(
        hidden_dim=32, num_layers=7, input_kernel_size=7, kernel_size=3, output_hidden_dim=64
    )
    config.reference = "no published 8-bit MNIST Gated PixelCNN figure; compare bits/dim runs"
    if config.conditioning == "label":
        config.reference = "no published figure; compare with the unconditional recipe"


RECIPES = common.by_name(pixelcnn, gated_pixelcnn)
# The recipes that offer `,conditional`.
CONDITIONAL = ("gated_pixelcnn",)


def get_config(arg: str = "pixelcnn") -> ml_collections.ConfigDict:
    """`arg`: "MODEL[,tiny][,conditional]"; `conditional` for the Gated PixelCNN."""
    dataset = common.dataset("mnist", train_split="train[:50000]", eval_split="train[50000:]")
    return common.assemble(arg, dataset, num_levels=256, recipes=RECIPES, conditional=CONDITIONAL)
