import json
import subprocess
import sys

from configs import binarized_mnist
from experiments import benchmark


def test_benchmark_figures():
    config = binarized_mnist.get_config("pixelcnn,tiny")
    result = benchmark.benchmark(config, seconds=0.2)
    assert result["train_images_per_sec"] > 0 and result["eval_images_per_sec"] > 0
    assert result["num_params"] > 0 and result["devices"] >= 1 and result["peak_rss_mb"] > 0


def test_benchmark_cli_prints_one_json_line():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.benchmark",
            "--config=configs/binarized_mnist.py:pixelcnn,tiny",
            "--config.batch_size=4",
            "--seconds=0.2",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = out.stdout.strip().splitlines()[-1]
    assert {
        "train_images_per_sec",
        "eval_images_per_sec",
        "num_params",
        "peak_rss_mb",
        "devices",
    } <= set(json.loads(line))


def test_benchmark_cli_bad_flag_fails():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.benchmark",
            "--config=configs/binarized_mnist.py:pixelcnn,tiny",
            "--config.model.depth=3",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
