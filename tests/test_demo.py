"""Acceptance: the demo pipeline end to end (train P0→P3, evaluate every phase, report, gate) on
a shortened run: four checkpoints, results for every task and phase, a report whose per-phase table
has every benchmark, and the gate's exit status as compass-gate itself gives it."""

from __future__ import annotations

import json
import re

import pytest
from clitools import REPO, run_cli, run_python

from compass_eval.analysis.benchmarks import BENCHMARKS

PHASES = ("p0", "p1", "p2", "p3")
TASKS = (
    "edinet_earnings",
    "edinet_fraud",
    "edinet_industry",
    "chabsa",
    "cma_basics",
    "cpa_audit",
    "fp2",
    "security_sales_1",
    "compass_gsm8k",
    "gsm8k_cot_xml",
    "compass_smoke_text",
    "compass_smoke_image",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    command = ["-m", "compass_cli.demo", "--out", str(out)]
    command += ["--recipe", str(REPO / "recipes" / "demo.yaml"), "--max-steps", "2", "--limit", "2"]
    run = run_python(command, out, timeout=600, COMPASS_DATA_DIR="demo")
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run.stdout


def test_four_phase_checkpoints(demo):
    out, _ = demo
    for phase in PHASES:
        manifest = json.loads((out / "checkpoints" / phase / "compass_phase.json").read_text())
        assert manifest["phase"] == phase
        assert list((out / "checkpoints" / phase).glob("*.safetensors"))


def test_results_for_every_task_and_phase(demo):
    out, _ = demo
    for phase in PHASES:
        (results,) = (out / "results" / phase).rglob("results_*.json")
        scores = json.loads(results.read_text())["results"]
        assert set(TASKS) <= set(scores), (phase, set(TASKS) - set(scores))
        for task in TASKS:
            assert list(results.parent.glob(f"samples_{task}_*.jsonl")), (phase, task)


def test_report_table_has_every_benchmark_and_phase(demo):
    out, stdout = demo
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["phases"] == list(PHASES)
    markdown = (out / "report" / "report.md").read_text()
    table = markdown.split("## Scores per phase", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    # edinet_bench_* (4,096-token generations per report) are not part of compass_suite
    assert {b for b in BENCHMARKS if not b.startswith("edinet_bench")} <= rows
    assert (out / "report" / "report.html").is_file()
    assert f"report: {(out / 'report' / 'report.html').resolve()}" in stdout


def test_gate_exit_status_is_the_configured_gates(demo):
    out, stdout = demo
    (printed,) = re.findall(r"^gate: (?:held|regression) \(exit (\d)\)$", stdout, re.M)
    policy = REPO / "reports" / "gate_demo.yaml"
    gate = run_cli(
        ["compass-gate", "--results", str(out / "results"), "--phases", *PHASES]
        + ["--policy", str(policy)],
        cwd=out,
    )
    assert gate.returncode in (0, 1), gate.stderr[-2000:]
    assert int(printed) == gate.returncode
