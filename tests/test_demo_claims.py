"""The demo's claims (compass_cli.demo.DEMO_CLAIMS): the full demo reproduces every one of them
(slow: it is the whole `make demo`), the check flags each kind of claim a run breaks, and the
README states exactly these claims."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
from clitools import REPO, cli_env, run_cli

from compass_cli.demo import DEMO_CLAIMS, PHASES, broken_claims, claims_markdown
from compass_eval.analysis.gate import GatePolicy, evaluate_gate
from compass_model.typed import load

POLICY = REPO / "reports" / "gate_demo.yaml"


@pytest.mark.slow
def test_the_full_demo_reproduces_every_claim(tmp_path):
    """~10 minutes on two cores: the demo exactly as `make demo` runs it, from an empty folder."""
    run = subprocess.run(
        [sys.executable, "-m", "compass_cli.demo", "--out", str(tmp_path)],
        cwd=REPO,
        env=cli_env(COMPASS_DATA_DIR="demo", OMP_NUM_THREADS="2"),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    gate = run_cli(
        ["compass-gate", "--results", str(tmp_path / "results"), "--phases", *PHASES]
        + ["--policy", str(POLICY)],
        cwd=tmp_path,
    )
    failing = {
        row.benchmark
        for row in evaluate_gate(report, load(GatePolicy, POLICY, "policy")).rows
        if row.failed
    }
    assert broken_claims(report, gate.returncode, failing) == []
    assert "claims: all" in run.stdout


def _report_as_claimed() -> dict:
    """The smallest report.json that satisfies DEMO_CLAIMS: every claimed best phase, and every
    claimed change as a significant paired test in its direction."""
    benchmarks: dict[str, dict] = {}
    for bench, phase in DEMO_CLAIMS.best_phase.items():
        benchmarks[bench] = {"best_phase": phase, "tied_best": [phase], "paired": []}
    for change in DEMO_CLAIMS.significant:
        test = {
            "a": change.before,
            "b": change.after,
            "delta": 0.5 * change.direction,
            "significant": True,
            "p_adjusted": 0.001,
        }
        benchmarks[change.benchmark]["paired"].append(test)
    return {"phases": PHASES, "benchmarks": benchmarks}


GATE = (DEMO_CLAIMS.gate_exit, set(DEMO_CLAIMS.gate_fails))


def test_a_report_as_claimed_breaks_no_claim():
    assert broken_claims(_report_as_claimed(), *GATE) == []


def _first_change(report: dict) -> dict:
    change = DEMO_CLAIMS.significant[0]
    return report["benchmarks"][change.benchmark]["paired"][0]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda r: r["benchmarks"]["gsm8k_cot_xml"].update(best_phase="p3", tied_best=["p3"]),
        lambda r: r["benchmarks"]["edinet_fraud"].update(tied_best=["p2", "p3"]),
        lambda r: _first_change(r).update(significant=False, p_adjusted=0.2),
        lambda r: _first_change(r).update(delta=-0.5),
        lambda r: r["benchmarks"]["edinet_earnings"].update(paired=[]),
        lambda r: r["benchmarks"].pop("edinet_earnings"),
    ],
    ids=["other-best-phase", "tied-best", "not-significant", "wrong-direction", "no-test", "gone"],
)
def test_each_kind_of_broken_claim_is_reported(spoil):
    report = copy.deepcopy(_report_as_claimed())
    spoil(report)
    assert len(broken_claims(report, *GATE)) >= 1


@pytest.mark.parametrize(
    "gate",
    [(0, set()), (1, {"gsm8k_cot_xml"}), (1, {*DEMO_CLAIMS.gate_fails, "edinet_fraud"})],
    ids=["held", "one-fewer", "one-more"],
)
def test_another_gate_verdict_breaks_the_gate_claim(gate):
    (line,) = broken_claims(_report_as_claimed(), *gate)
    assert line.startswith("gate:")


def test_the_readme_states_exactly_these_claims():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert claims_markdown() in readme, "paste `claims_markdown()` into the README's demo section"
