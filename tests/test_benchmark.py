import json
import shlex
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from configs import binarized_mnist
from experiments import benchmark
from tests.helpers import run_ok

FAKE_PEER = shlex.join(
    [
        sys.executable,
        "-c",
        'print("warming up"); '
        'print(\'{"train_images_per_sec": 2.0, "eval_images_per_sec": 4.0, "num_params": 7}\')',
    ]
)


@pytest.mark.slow
def test_benchmark_figures():
    config = binarized_mnist.get_config("pixelcnn,tiny")
    result = benchmark.benchmark(config, seconds=0.2, sample_rows=1)
    assert result["train_images_per_sec"] > 0 and result["eval_images_per_sec"] > 0
    assert result["num_params"] > 0 and result["devices"] >= 1 and result["peak_rss_mb"] > 0
    assert result["train_gflops_per_image"] > 0
    fast, naive = result["fast_sample_images_per_sec"], result["naive_sample_images_per_sec"]
    assert fast > naive > 0 and result["sample_speedup"] == pytest.approx(fast / naive, rel=0.01)
    assert result["fast_kernels_per_step"] > 0 and result["naive_kernels_per_step"] > 0


def test_kernels_per_step_counts_one_loop_iteration():
    """A loop of a GEMM, then tanh and an add fused: per iteration the GEMM
    and the fusion, and the counter and the loop test; nothing outside it,
    not a smaller loop before it, and a loop inside it counted in its place."""

    def kernels(f, *args):
        return benchmark.kernels_per_step(jax.jit(f).lower(*args).compile().as_text())

    def gemm_tanh(i, x):
        return jnp.tanh(x @ x) + i

    x = jnp.ones((4, 4))
    once = kernels(lambda x: jax.lax.fori_loop(0, 5, gemm_tanh, x), x)
    before_and_after = kernels(lambda x: jnp.sin(jax.lax.fori_loop(0, 5, gemm_tanh, x @ x)), x)
    assert once == before_and_after
    smaller_loop_first = kernels(
        lambda x: jax.lax.fori_loop(
            0, 5, gemm_tanh, jax.lax.fori_loop(0, 3, lambda i, x: x @ x, x)
        ),
        x,
    )
    assert smaller_loop_first == once
    twice = kernels(lambda x: jax.lax.fori_loop(0, 5, lambda i, x: gemm_tanh(i, x @ x), x), x)
    assert twice == once + 1  # one more GEMM per iteration
    nested = kernels(
        lambda x: jax.lax.fori_loop(0, 3, lambda i, x: jax.lax.fori_loop(0, 5, gemm_tanh, x), x),
        x,
    )
    assert nested > once
    with pytest.raises(ValueError, match="no loop"):
        kernels(lambda x: x @ x, x)


def test_benchmark_against_a_peer_reports_median_ratios():
    config = binarized_mnist.get_config("pixelcnn,tiny")
    result = benchmark.benchmark(config, seconds=0.1, rounds=2, peer=FAKE_PEER)
    assert result["rounds"] == 2 and result["peer_num_params"] == 7
    assert result["peer_train_images_per_sec"] == 2.0
    # The median of two per-round ratios is their mean: our median over the peer's.
    assert result["train_ratio"] == pytest.approx(result["train_images_per_sec"] / 2.0, rel=1e-3)
    assert result["eval_ratio"] == pytest.approx(result["eval_images_per_sec"] / 4.0, rel=1e-3)


def test_a_failing_peer_is_named():
    peer = shlex.join([sys.executable, "-c", "import sys; sys.exit('no torch here')"])
    with pytest.raises(ValueError, match="failed \\(exit 1\\): no torch here"):
        benchmark.run_peer(peer)


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


def test_benchmark_help_keeps_its_line_continuations():
    out, _ = run_ok("experiments.benchmark", "--help", timeout=120)
    assert "configs/binarized_mnist.py:pixelcnn \\\n    [--config.model.hidden_dim=32" in out
    assert "[--whole_batch] \\\n    [--rounds=10" in out
