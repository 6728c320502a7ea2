"""compass-gate exit codes, policy handling and the GitHub step summary."""

import json
from pathlib import Path

import pytest

from compass_eval.analysis.gate_cli import main

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"
BASE = ["--results", str(RUNS), "--phases", "p0", "p1", "p2", "p3", "--iters", "200"]
# Most fixture benchmarks have no sample logs: these tests exercise the point rule.
PHASES = [*BASE, "--no-require-significant"]


@pytest.fixture(autouse=True)
def no_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("benchmark",):
            rows[cells[0]] = cells
    return rows


def test_regression_against_peak_exits_1(capsys):
    assert main([*PHASES, "--max-drop", "0.05"]) == 1
    rows = _rows(capsys.readouterr().out)
    # edinet_industry: peak before p3 is p2 (0.25); p3 has 0.05 -> drop 0.20
    assert rows["edinet_industry"] == [
        "edinet_industry",
        "p2",
        "0.2500",
        "0.0500",
        "0.2000",
        "0.0500",
        "—",
        "—",
        "regression",
    ]
    # gsm8k: peak p2 0.50, p3 0.45: a drop of exactly the threshold holds
    assert rows["gsm8k"][1:6] == ["p2", "0.5000", "0.4500", "0.0500", "0.0500"]
    assert rows["gsm8k"][-1] == "held"
    assert rows["edinet_fraud"][-1] == "held"
    # p3 was not evaluated on gsm8k_cot_xml: missing evidence is a failure, never a pass
    assert rows["gsm8k_cot_xml"][-1] == "missing in candidate"


def test_against_p0_and_named_candidate(capsys):
    # p2 against p0: every benchmark improved except jp_fin_harness (0.40 -> 0.39)
    assert main([*PHASES, "--against", "p0", "--candidate", "p2", "--max-drop", "0.02"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["jp_fin_harness"][1:5] == ["p0", "0.4000", "0.3900", "0.0100"]


def test_policy_ignores_and_thresholds(tmp_path, capsys):
    policy = tmp_path / "gate.yaml"
    policy.write_text(
        "max_drop: 0.05\nbenchmarks:\n  edinet_industry: {ignore: true}\n  gsm8k: {max_drop: 0.01}\n"
    )
    assert main([*PHASES, "--policy", str(policy)]) == 1
    rows = _rows(capsys.readouterr().out)
    assert rows["edinet_industry"][-1] == "ignored"
    assert rows["gsm8k"][5] == "0.0100" and rows["gsm8k"][-1] == "regression"
    policy.write_text(
        "benchmarks:\n  edinet_industry: {ignore: true}\n  gsm8k_cot_xml: {ignore: true}\n"
    )
    assert main([*PHASES, "--policy", str(policy)]) == 0


def test_significance_requirement(tmp_path, capsys):
    policy = tmp_path / "gate.yaml"
    policy.write_text(
        "benchmarks:\n  edinet_industry: {require_significant: true, max_drop: 0.0}\n"
        "  gsm8k_cot_xml: {ignore: true}\n"
    )
    # p2 -> p3 loses 8 of 40 documents and gains none: exact p = 1/256, x3 references (Holm)
    assert main([*PHASES, "--policy", str(policy)]) == 1
    row = _rows(capsys.readouterr().out)["edinet_industry"]
    assert row[1] == "p2" and row[6:] == ["0.004", "0.012", "regression"]
    # against a 5-point margin the same 8–0 is not enough evidence after the correction
    policy.write_text(
        "benchmarks:\n  edinet_industry: {require_significant: true}\n"
        "  gsm8k_cot_xml: {ignore: true}\n"
    )
    assert main([*PHASES, "--policy", str(policy)]) == 0
    assert _rows(capsys.readouterr().out)["edinet_industry"][-1] == "held"
    # gsm8k has no sample logs, so its significance cannot be tested: bad input
    policy.write_text("max_drop: 0.01\n")
    assert main([*BASE, "--policy", str(policy)]) == 2
    assert "paired test" in capsys.readouterr().err


def test_step_summary_appended(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main([*PHASES]) == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## compass-gate\n")
    assert (
        "| edinet_industry | p2 | 0.2500 | 0.0500 | 0.2000 | 0.0500 | — | — | regression |" in text
    )
    assert "Gate: FAILED (gsm8k_cot_xml, edinet_industry)" in text


def test_gate_reads_report_json(tmp_path, capsys):
    from compass_eval.analysis.report_cli import main as report_main

    out = tmp_path / "out"
    assert report_main([*BASE, "--out", str(out)]) == 0
    point = ["--report", str(out / "report.json"), "--no-require-significant"]
    assert main(point) == 1
    assert main([*point, "--candidate", "p2", "--max-drop", "0.1"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--results", str(RUNS), "--phases", "p0"], "at least two phases"),
        (["--results", str(RUNS), "--phases", "p0", "p0"], "given twice"),
        (["--results", str(RUNS), "--phases", "p0", "p9"], "no such file or folder"),
        ([*PHASES, "--against", "p7"], "--against"),
        ([*PHASES, "--candidate", "p7"], "candidate phase"),
        ([], "either --report"),
    ],
)
def test_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_policy_with_unknown_key_exits_2(tmp_path, capsys):
    policy = tmp_path / "gate.yaml"
    policy.write_text("max_drop: 0.05\nmax_dorp: 0.1\n")
    assert main([*PHASES, "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'max_dorp'" in err and str(policy) in err
    policy.write_text("benchmarks:\n  gsm8k: {threshold: 0.1}\n")
    assert main([*PHASES, "--policy", str(policy)]) == 2
    assert "benchmarks.gsm8k: unknown key 'threshold'" in capsys.readouterr().err


def test_report_json_that_is_not_a_report(tmp_path, capsys):
    bogus = tmp_path / "report.json"
    bogus.write_text(json.dumps({"results": {}}))
    assert main(["--report", str(bogus)]) == 2
    assert "not a compass-report report.json" in capsys.readouterr().err


def test_exit_status_of_the_real_process(tmp_path):
    import subprocess
    import sys

    gate = [sys.executable, "-m", "compass_eval.analysis.gate_cli"]
    failed = subprocess.run([*gate, *PHASES], capture_output=True, text=True, timeout=120)
    assert (
        failed.returncode == 1 and "Gate: FAILED (gsm8k_cot_xml, edinet_industry)" in failed.stdout
    )
    bad = subprocess.run(
        [*gate, "--results", str(tmp_path), "--phases", "p0", "p1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr
        == f"compass-gate: error: phase 'p0': no such file or folder: {tmp_path / 'p0'}\n"
    )
