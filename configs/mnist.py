"""MNIST, 28x28x1, 8-bit grey levels (K=256); no validation split of its own,
so the last 10,000 training images are held out.

The PixelRNN paper reports no 8-bit MNIST result; the sizes follow its
binarized-MNIST models, and results are stated in bits/dim.
"""

from configs import common

RECIPES = {
    "pixelcnn": common.Recipe(
        model=dict(hidden_dim=16, num_layers=7, output_hidden_dim=32),
        tiny=common.TINY,
        reference="no published 8-bit MNIST PixelCNN figure; compare bits/dim runs",
        cpu_chunk_pixels=common.CONV_CPU_CHUNK_PIXELS,
    ),
    # Sizes as on binarized MNIST (configs/binarized_mnist.py); `,conditional`
    # conditions on the digit class.
    "gated_pixelcnn": common.Recipe(
        model=dict(
            hidden_dim=32, num_layers=7, input_kernel_size=7, kernel_size=3, output_hidden_dim=64
        ),
        tiny=common.TINY_GATED,
        reference="no published 8-bit MNIST Gated PixelCNN figure; compare bits/dim runs",
        cpu_chunk_pixels=common.CONV_CPU_CHUNK_PIXELS,
        conditional=True,
        conditional_reference="no published figure; compare with the unconditional recipe",
    ),
}


def get_config(arg: str = "pixelcnn"):
    return common.get_config(
        arg,
        common.dataset("mnist", train_split="train[:50000]", eval_split="train[50000:]"),
        num_levels=256,
        recipes=RECIPES,
    )
