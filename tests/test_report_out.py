"""compass-report --out destroys nothing: an --out that holds or sits inside its inputs, or a
non-empty folder that is not an earlier report, is refused in one line with exit 2 and every file
left byte-identical; an earlier report is replaced whole; a second writer is stopped."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from clitools import run_cli

from compass_eval.analysis.render import REPORT_MARKER
from compass_eval.analysis.report_cli import main
from compass_model.atomic import output_lock

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    return copy


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and folder under `root` (hidden ones included) with its content's hash."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "dir"
        for path in sorted(root.rglob("*"))
    }


def refused(argv: list[str], capsys, fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("compass-report: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and fragment in err


def test_out_equal_to_results_is_refused_by_the_real_command(runs, tmp_path):
    before = tree_digest(tmp_path)
    result = run_cli(
        ["compass-report", "--results", str(runs), "--phases", "p0", "p1", "--out", str(runs)],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "overlaps the input" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize(
    "out",
    [
        "runs/p0",  # a phase's results folder itself
        "runs/p1/compass-ckpt/report",  # inside a phase's results
        "runs/p1/compass-ckpt",  # the folder of an explicit results file
        ".",  # holding everything
    ],
)
def test_out_overlapping_an_input_is_refused(runs, tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    p1_file = next((runs / "p1" / "compass-ckpt").glob("results_*.json"))
    before = tree_digest(tmp_path)
    argv = ["--results", str(runs), "--phases", "p0", f"p1={p1_file}", "--out", out]
    refused(argv, capsys, "overlaps the input")
    assert tree_digest(tmp_path) == before


def test_out_holding_the_results_root_is_refused(runs, tmp_path, capsys):
    refused(
        ["--results", str(runs), "--phases", f"p0={runs / 'p0'}", "--out", str(tmp_path)],
        capsys,
        "overlaps the input",
    )


def test_non_empty_folder_that_is_not_a_report_is_kept(runs, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("not a report")
    (out / "report.json").write_text("{}")  # a look-alike without the marker
    before = tree_digest(tmp_path)
    refused(
        ["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)],
        capsys,
        "not an earlier output",
    )
    assert tree_digest(tmp_path) == before


def test_an_earlier_report_is_replaced_whole(runs, tmp_path):
    out = tmp_path / "report"
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 0
    assert (out / REPORT_MARKER).is_file()
    first = (out / "report.json").read_text()
    assert main(["--results", str(runs), "--phases", "p0", "p1", "p2", "--out", str(out)]) == 0
    assert (out / "report.json").read_text() != first
    assert '"p2"' in (out / "report.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs"]


def test_empty_folder_is_accepted(runs, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 0
    assert (out / "report.md").is_file()


def test_a_second_writer_of_the_same_report_stops_with_one_line(runs, tmp_path):
    out = tmp_path / "report"
    assert main(["--results", str(runs), "--phases", "p0", "p1", "--out", str(out)]) == 0
    before = tree_digest(tmp_path)
    with output_lock(out):  # this process is the first writer; the real command the second
        result = run_cli(
            ["compass-report", "--results", str(runs), "--phases", "p0", "p1", "--out", str(out)],
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "another process is writing it" in result.stderr
    assert tree_digest(tmp_path) == before


def test_out_under_a_file_is_refused_in_one_line(runs, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "report"
    refused(
        ["--results", str(runs), "--phases", "p0", "--out", str(out)], capsys, "cannot write in"
    )
