"""The trained models shipped in pretrained/ still load and score what their
manifests say, and `experiments.export` writes such a model from a run."""

import json
import pathlib

import jax
import numpy as np
import pytest

import pixel_models
from experiments import report
from pixel_models.training.export import MANIFEST_FILE, check_score, params_sha256
from tests.helpers import ROOT, TINY, run_ok

SHIPPED = sorted(path.parent for path in (ROOT / "pretrained").glob(f"*/*/{MANIFEST_FILE}"))


def _loads(folder, manifest: dict) -> pixel_models.TrainedModel:
    """`folder` loads and holds the manifest's parameters."""
    trained = pixel_models.load(folder)
    assert trained.step == manifest["step"]
    assert sum(np.size(leaf) for leaf in jax.tree.leaves(trained.params)) == manifest["num_params"]
    assert params_sha256(trained.params) == manifest["params_sha256"]
    return trained


def _check(folder, manifest: dict) -> None:
    """`folder` loads, holds the manifest's parameters, and scores its check split."""
    trained = _loads(folder, manifest)
    check = manifest["check"]
    images = pixel_models.data.load_split(trained.config.dataset, check["split"])
    nll = -check_score(trained, images.batch(np.arange(len(images)))["image"], manifest)
    np.testing.assert_allclose(nll, check["nll_nats"], rtol=1e-5)


IDS = [f"{p.parent.name}/{p.name}" for p in SHIPPED]


@pytest.mark.parametrize("folder", SHIPPED, ids=IDS)
def test_a_shipped_model_loads_its_manifests_parameters(folder):
    _loads(folder, json.loads((folder / MANIFEST_FILE).read_text()))


# Scoring 500 test images (a latent model's bound with k=1,000 for the VAE)
# takes up to a minute a model: the long tier.
@pytest.mark.slow
@pytest.mark.parametrize("folder", SHIPPED, ids=IDS)
def test_a_shipped_model_scores_its_manifest(folder):
    _check(folder, json.loads((folder / MANIFEST_FILE).read_text()))


def test_the_readme_results_table_is_the_reports(monkeypatch):
    """The README's Results table is `experiments.report`'s, not typed: it
    changes when a shipped model does."""
    monkeypatch.chdir(ROOT)
    table = report.models_markdown(pathlib.Path("pretrained/binarized_mnist"))
    assert table in (ROOT / "README.md").read_text()


def test_export_writes_a_model_that_load_evaluate_and_sample_read(tmp_path):
    workdir, folder = tmp_path / "run", tmp_path / "exported"
    run_ok(
        "experiments.train",
        f"--config={TINY}",
        f"--workdir={workdir}",
        "--config.eval_every_steps=20",
    )
    run_ok("experiments.evaluate", f"--workdir={workdir}", "--split=test[:32]")
    out, _ = run_ok(
        "experiments.export",
        f"--workdir={workdir}",
        f"--output={folder}",
        "--split=test[:32]",
        "--check_split=test[:16]",
    )
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert json.loads(out) == manifest
    assert manifest["chosen_by"] == "lowest validation NLL" and manifest["step"] == 20
    assert manifest["cpu_hours"] > 0 and "pixelcnn,tiny" in manifest["commands"][0]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "config.json", MANIFEST_FILE]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not any(str(folder).encode() in p.read_bytes() for p in files)  # no machine paths
    _check(folder, manifest)
    out, _ = run_ok("experiments.evaluate", f"--workdir={folder}", "--split=test[:32]")
    assert json.loads(out)["nll_nats"] == pytest.approx(manifest["nll_nats"], rel=1e-6)


def test_export_finds_the_evaluation_of_the_parameters_it_ships(tmp_path):
    """`--params=raw` ships what `evaluate --params=raw` scored: its own
    result file, never the run's default parameters' result of that step."""
    from pixel_models.training import evaluation
    from pixel_models.training.export import evaluated

    for params, nll in ((None, 104.0), ("raw", 96.0)):
        path = evaluation.output_path(tmp_path, "test", 550, params)
        path.write_text(json.dumps({"step": 550, "nll_nats": nll, "params": params or "ema"}))
    assert evaluated(tmp_path, "test", 550)["nll_nats"] == 104.0
    assert evaluated(tmp_path, "test", 550, "raw")["nll_nats"] == 96.0
    with pytest.raises(ValueError, match="--checkpoint_step=605 --params=raw"):
        evaluated(tmp_path, "test", 605, "raw")


def test_shipped_files_are_small():
    """pretrained/ is committed to git: no file over 2 MiB."""
    large = [
        p for p in (ROOT / "pretrained").rglob("*") if p.is_file() and p.stat().st_size > 2 << 20
    ]
    assert not large


def test_export_writes_no_file_over_its_limit(tmp_path):
    """An array of 3 MiB is written in files under a 1 MiB limit, and
    reads back exactly."""
    from pixel_models.training import checkpoints
    from pixel_models.training.export import write_checkpoint

    params = {"w": np.random.default_rng(0).normal(size=(1024, 768)).astype(np.float32)}
    write_checkpoint(tmp_path, 3, {"step": np.int32(3), "params": params}, max_file_bytes=1 << 20)
    sizes = [p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()]
    assert max(sizes) <= 1 << 20 and sum(sizes) > 2 << 20  # all of it, little compressed
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), params
    )
    restored, step = checkpoints.restore_eval_params(
        checkpoints.make_manager(tmp_path, create=False), abstract, use_ema=False
    )
    assert step == 3 and np.array_equal(restored["w"], params["w"])
