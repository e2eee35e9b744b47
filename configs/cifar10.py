"""CIFAR-10, 32x32x3, K=256 (test NLL in bits/dim).

PixelRNN paper (van den Oord et al. 2016) Sec. 5 and Table 5: PixelCNN with
15 residual layers of h=128 and 1024-map output layers, 3.14 bits/dim; Row
LSTM and Diagonal BiLSTM with 12 layers of h=128: 3.07 and 3.00 bits/dim.
"""

from configs import common

RECIPES = {
    "pixelcnn": common.Recipe(
        model=dict(hidden_dim=128, num_layers=15, output_hidden_dim=1024),
        tiny=dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
        reference="PixelRNN paper Table 5: PixelCNN 3.14 bits/dim",
        cpu_chunk_pixels=8_192,  # 8 images
    ),
    # Sec. 5.2/Table 5: 12 layers of h=128 for both PixelRNNs on CIFAR-10.
    "row_lstm": common.Recipe(
        model=dict(hidden_dim=128, num_layers=12, output_hidden_dim=1024),
        tiny=dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
        reference="PixelRNN paper Table 5: Row LSTM 3.07 bits/dim",
    ),
    "diagonal_bilstm": common.Recipe(
        model=dict(hidden_dim=128, num_layers=12, output_hidden_dim=1024),
        tiny=dict(hidden_dim=8, num_layers=2, output_hidden_dim=16),
        reference="PixelRNN paper Table 5: Diagonal BiLSTM 3.00 bits/dim",
    ),
}


def get_config(arg: str = "pixelcnn"):
    return common.get_config(
        arg,
        common.dataset("cifar10", train_split="train[:45000]", eval_split="train[45000:]"),
        num_levels=256,
        recipes=RECIPES,
    )
