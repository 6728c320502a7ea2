"""compass-report on what the real `lm_eval` CLI writes: results JSON and samples JSONL.

lm-eval's own `dummy` model answers at random; the point is the file layout and the per-sample
values the Compass tasks log (`[label, p]` for ROC-AUC, `[gold, pred]` for chabsa's F1).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compass_eval.analysis.report_cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "compass_eval" / "demo_data"


@pytest.mark.slow
@pytest.mark.skipif(not (DEMO / "edinet").is_dir(), reason="no bundled demo data")
def test_report_reads_real_lm_eval_output(tmp_path):
    env = {**os.environ, "COMPASS_DATA_DIR": str(DEMO), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "dummy", "--tasks", "edinet_fraud,chabsa"]
        + ["--output_path", str(tmp_path / "run"), "--log_samples"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(next((tmp_path / "run").rglob("results_*.json")).read_text())
    out = tmp_path / "report"
    phases = [f"p0={tmp_path / 'run'}", f"p1={tmp_path / 'run'}"]
    assert main(["--phases", *phases, "--out", str(out), "--iters", "200"]) == 0
    report = json.loads((out / "report.json").read_text())
    # every sample log reproduced its reported score, so nothing was left without an interval
    assert report["notes"] == []
    fraud = report["benchmarks"]["edinet_fraud"]
    assert fraud["scores"]["p0"] == results["results"]["edinet_fraud"]["roc_auc,none"]
    assert fraud["ci"]["p0"]["low"] <= fraud["scores"]["p0"] <= fraud["ci"]["p0"]["high"]
    chabsa = report["subtasks"]["jp_fin_harness"]["chabsa"]
    assert chabsa["scores"]["p0"] == results["results"]["chabsa"]["f1,none"]
    assert chabsa["ci"]["p0"] is not None
    assert chabsa["chance"] == 0.5
    # the same run twice: identical documents, a zero difference, not significant
    (test,) = fraud["paired"]
    assert test["delta"] == 0.0 and test["significant"] is False
