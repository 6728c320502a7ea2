"""The shipped external baselines: every figure has a source, and the report shows them."""

import json
from pathlib import Path

import pytest

from compass_eval.analysis.baselines import load_baselines
from compass_eval.analysis.report_cli import main
from compass_model.errors import CompassInputError

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"


def test_every_baseline_has_a_source_and_a_fraction_score():
    baselines = load_baselines()
    assert baselines
    for b in baselines:
        assert b["source"].startswith("https://")
        assert 0.0 <= b["score"] <= 1.0
    llama2 = [b for b in baselines if b["model"] == "meta-llama/Llama-2-7b-hf"]
    # the same published figure the leaderboard rule reproduces from the result files
    assert llama2[0]["score"] == 0.3689


def test_report_lists_baselines_as_cross_source(tmp_path):
    out = tmp_path / "o"
    assert main(["--results", str(RUNS), "--phases", "p0", "p1", "--out", str(out)]) == 0
    external = json.loads((out / "report.json").read_text())["external"]
    assert {e["model"] for e in external["jp_fin_harness"]} >= {"openai/gpt-4"}
    md = (out / "report.md").read_text()
    assert "## External models (cross-source" in md
    assert "| jp_fin_harness | openai/gpt-4 | 66.07% |" in md


def test_unknown_baseline_key_is_rejected(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(
        "baselines:\n  - {benchmark: gsm8k, model: m, metric: acc, score: 0.5, url: x}\n"
    )
    with pytest.raises(CompassInputError, match="unknown key"):
        load_baselines(path)
