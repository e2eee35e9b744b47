"""Helpers shared by the test modules: the programs run as a user runs them,
and the tiny configs and models the tests train."""

import pathlib
import subprocess
import sys

import ml_collections

from configs import binarized_mnist, cifar10, mnist
from pixel_models import build_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = "configs/binarized_mnist.py:pixelcnn,tiny"


def tiny_config(data_dir, **overrides) -> ml_collections.ConfigDict:
    """`binarized_mnist.py:pixelcnn,tiny` on `data_dir`, evaluated on 64 images."""
    config = binarized_mnist.get_config("pixelcnn,tiny")
    config.dataset.data_dir = str(data_dir)
    config.dataset.eval_split = "validation[:64]"
    config.update(overrides)
    return config


def tiny_model_config(name: str, num_levels: int) -> ml_collections.ConfigDict:
    """The `tiny` model config of `name` from the first dataset with a recipe
    for it, for `num_levels` levels."""
    dataset = next(d for d in (binarized_mnist, mnist, cifar10) if name in d.RECIPES)
    model = dataset.get_config(f"{name},tiny").model
    model.num_levels = num_levels
    return model


def tiny_pixelrnn(name: str, num_levels: int, **overrides):
    """A PixelRNN-family model (`row_lstm`, `diagonal_bilstm`,
    `multiscale_pixelrnn`) of 4 hidden maps and 2 layers."""
    fields = dict(
        name=name,
        num_levels=num_levels,
        hidden_dim=4,
        num_layers=2,
        input_kernel_size=3,
        output_hidden_dim=8,
    )
    fields.update(overrides)
    return build_model(ml_collections.ConfigDict(fields))


def cli(module: str, *args: str, **popen) -> subprocess.Popen:
    """`python -m module args` from the project root; stderr/stdout captured
    unless `popen` says otherwise."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, text=True, **popen)


def run_ok(module: str, *args: str, timeout: float = 300, **popen) -> tuple[str, str]:
    """Run `python -m module args` to completion; assert it exits 0 (showing
    its stderr if not) and return `(stdout, stderr)`."""
    process = cli(module, *args, **popen)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out, err
