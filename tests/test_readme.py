"""The README's Quick start, run as written: its train and evaluate commands
give the NLL it quotes, within the ±1 nat it says the figure may move."""

import json
import re
import shlex

import pytest

from tests.helpers import ROOT, run_ok

QUICK_START = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]


def _program_args(program: str) -> list[str]:
    """The arguments the Quick start gives `python -m experiments.<program>`."""
    match = re.search(rf"-m experiments\.{program} ([^&\n]+)", QUICK_START)
    assert match, f"the Quick start runs no experiments.{program}"
    return shlex.split(match.group(1))


@pytest.mark.slow
def test_the_quick_start_gives_the_nll_the_readme_quotes(tmp_path):
    quoted = float(re.search(r'"nll_nats":\s*([\d.]+)', QUICK_START).group(1))
    assert re.search(r"±2 nats", QUICK_START)

    def in_tmp(args: list[str]) -> list[str]:
        return [re.sub(r"^--workdir=.*", f"--workdir={tmp_path}", arg) for arg in args]

    run_ok("experiments.train", *in_tmp(_program_args("train")), timeout=1800)
    out, _ = run_ok("experiments.evaluate", *in_tmp(_program_args("evaluate")), timeout=1800)
    result = json.loads(out)
    assert result["num_examples"] == 10_000
    assert abs(result["nll_nats"] - quoted) <= 2.0, (result["nll_nats"], quoted)
