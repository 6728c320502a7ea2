"""compass-report on bad input: one line, exit 2, nothing in --out; and the comparability guard."""

import json
import shutil
from pathlib import Path

import pytest

from compass_eval.analysis.report_cli import main

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"


@pytest.fixture
def runs(tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    return copy


def _results_file(runs: Path, phase: str) -> Path:
    return next((runs / phase / "compass-ckpt").glob("results_*.json"))


def _edit(runs: Path, phase: str, change) -> None:
    path = _results_file(runs, phase)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _fails(argv, capsys, *fragments):
    out = Path(argv[argv.index("--out") + 1])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("compass-report: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_missing_phase_folder(runs, tmp_path, capsys):
    argv = ["--results", str(runs), "--phases", "p0", "p7", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "phase 'p7'", "no such file or folder")


def test_folder_without_results(runs, tmp_path, capsys):
    (runs / "empty").mkdir()
    (runs / "empty" / "other.json").write_text("[1, 2]")
    argv = ["--results", str(runs), "--phases", "p0", "empty", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "phase 'empty'", "no lm-eval results JSON")


def test_malformed_json(runs, tmp_path, capsys):
    _results_file(runs, "p1").write_text('{"results": {')
    argv = ["--results", str(runs), "--phases", "p0", "p1", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "results_2026-01-02", "not readable as JSON")


def test_missing_metric(runs, tmp_path, capsys):
    _edit(runs, "p2", lambda d: d["results"]["edinet_fraud"].pop("roc_auc,none"))
    argv = ["--results", str(runs), "--phases", "p0", "p2", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "task 'edinet_fraud' has no 'roc_auc' metric")


def test_undefined_score_is_shown_as_such(runs, tmp_path):
    """A NaN metric (ROC-AUC of one class) is undefined in that phase; the report goes on."""
    path = _results_file(runs, "p1")
    path.write_text(path.read_text().replace('"acc,none": 0.2,', '"acc,none": NaN,', 1))
    out = tmp_path / "o"
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 0
    entry = json.loads((out / "report.json").read_text())["benchmarks"]["edinet_industry"]
    assert entry["scores"]["p1"] is None and "undefined" in entry["undefined"]["p1"]
    assert entry["complete"] is False
    assert "undefined" in (out / "report.md").read_text()


def test_infinite_score(runs, tmp_path, capsys):
    path = _results_file(runs, "p1")
    path.write_text(path.read_text().replace('"acc,none": 0.2,', '"acc,none": Infinity,', 1))
    argv = ["--results", str(runs), "--phases", "p0", "p1", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "is inf, not a finite number")


def test_duplicate_phase_names(runs, tmp_path, capsys):
    argv = ["--phases", f"p0={runs / 'p0'}", f"p0={runs / 'p1'}", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "phase name 'p0' is given twice")


def test_malformed_sample_log(runs, tmp_path, capsys):
    log = next((runs / "p3" / "compass-ckpt").glob("samples_*.jsonl"))
    log.write_text(log.read_text() + "{oops\n")
    argv = ["--results", str(runs), "--phases", "p0", "p3", "--out", str(tmp_path / "o")]
    _fails(argv, capsys, "samples_edinet_industry", ":41: malformed JSON line")


def test_failed_run_keeps_the_previous_report(runs, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 0
    before = (out / "report.json").read_text()
    _results_file(runs, "p1").write_text("not json")
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 2
    assert (out / "report.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "runs"]


def test_explicit_results_file_and_phase_with_gaps(runs, tmp_path):
    # p1 given as a single file; the benchmark it lacks is shown as a gap, not an error
    _edit(runs, "p1", lambda d: d["results"].pop("edinet_earnings"))
    out = tmp_path / "o"
    argv = ["--phases", f"p0={runs / 'p0'}", f"p1={_results_file(runs, 'p1')}", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["benchmarks"]["edinet_earnings"]["scores"] == {"p0": 0.52, "p1": None}
    assert "edinet_earnings" not in [b for b, e in report["benchmarks"].items() if e["complete"]]


@pytest.mark.parametrize(
    ("field", "change", "setting"),
    [
        ("version", lambda d: d["versions"].update(fp2=2.0), "task version"),
        ("n-shot", lambda d: d["n-shot"].update(fp2=3), "n-shot"),
        ("limit", lambda d: d["config"].update(limit=10), "limit"),
        (
            "variant",
            lambda d: d["configs"]["fp2"]["metadata"].update(prompt_variant="1.0-0.2"),
            "prompt variant",
        ),
        (
            "fingerprint",
            lambda d: d["configs"]["fp2"]["metadata"].update(data_fingerprint="other"),
            "data fingerprint",
        ),
    ],
)
def test_guard_refuses_incomparable_phases(runs, tmp_path, capsys, field, change, setting):
    _edit(runs, "p2", change)
    argv = ["--results", str(runs), "--phases", "p0", "p1", "p2", "--out", str(tmp_path / "o")]
    fragment = "limit" if field == "limit" else f"task 'fp2' differs in {setting}"
    _fails(argv, capsys, fragment, "p2=", "--allow-mismatch")


def test_allow_mismatch_warns_in_the_report(runs, tmp_path, capsys):
    _edit(
        runs,
        "p2",
        lambda d: d["configs"]["fp2"]["metadata"].update(data_fingerprint="<b>other</b>"),
    )
    out = tmp_path / "o"
    argv = ["--results", str(runs), "--phases", "p0", "p1", "p2", "--out", str(out)]
    assert main([*argv, "--allow-mismatch"]) == 0
    assert "warning: task 'fp2' differs in data fingerprint" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["mismatches"] == [
        "task 'fp2' differs in data fingerprint between phases "
        "(p0=fp-fp2, p1=fp-fp2, p2=<b>other</b>)"
    ]
    assert "Warning — phases are not strictly comparable" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "p2=&lt;b&gt;other&lt;/b&gt;" in html and "<b>other</b>" not in html


def test_html_escapes_strings_from_results_files(runs, tmp_path):
    evil = "<img src=x onerror=alert(1)>"

    def rename(d):
        d["results"][f"cma_basics-1.0-{evil}"] = d["results"]["cma_basics"]

    _edit(runs, "p0", rename)
    _edit(runs, "p0", lambda d: d["configs"]["fp2"]["metadata"].update(prompt_variant=evil))
    out = tmp_path / "o"
    argv = ["--results", str(runs), "--phases", "p0", "p1", "--out", str(out), "--allow-mismatch"]
    assert main(argv) == 0
    html = (out / "report.html").read_text()
    assert evil not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
