"""Binarized MNIST (Larochelle & Murray 2011 fixed binarization), 28x28x1, K=2.

Recipes from van den Oord et al. 2016, "Pixel Recurrent Neural Networks"
(PixelRNN paper), Table 4 (test NLL in nats).
"""

from configs import common

MODELS = {
    # The paper gives no size for its MNIST PixelCNN; this is the size of its
    # 7-layer, h=16 MNIST PixelRNN.
    "pixelcnn": dict(hidden_dim=16, num_layers=7, output_hidden_dim=32),
}
REFERENCE = {
    "pixelcnn": "PixelRNN paper Table 4: PixelCNN 81.30 nats",
}


def get_config(arg: str = "pixelcnn"):
    return common.get_config(
        arg,
        common.dataset("binarized_mnist", train_split="train", eval_split="validation"),
        num_levels=2,
        models=MODELS,
        reference=REFERENCE,
    )
