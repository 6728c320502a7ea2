"""Data root, missing-file errors and the `compass-data` CLI (status, fetch, import)."""

from __future__ import annotations

import json
import shutil

import pytest
from clitools import REPO, run_cli

from compass_eval.data import cli
from compass_eval.data.root import data_root, default_root, demo_root

DEMO = REPO / "compass_eval" / "demo_data"


def test_data_root_default_is_under_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPASS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_root() == default_root() == tmp_path / "compass" / "data"
    monkeypatch.setenv("COMPASS_DATA_DIR", "demo")
    assert data_root() == demo_root() == DEMO


def test_lm_eval_names_the_missing_file_and_compass_data_in_one_line(tmp_path):
    # The data is read while the tasks load: lm-eval's stand-in model keeps the run short.
    run = run_cli(
        ["lm_eval", "--model", "dummy", "--tasks", "cma_basics", "--limit", "1"],
        cwd=tmp_path,
        COMPASS_DATA_DIR=str(tmp_path),
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    missing = tmp_path / "jp_fin_harness" / "cma_basics.json"
    assert last.startswith(f"compass: missing data file {missing} - get it with `compass-data")
    assert "compass-data fetch jp_fin_harness" in last


def _status(monkeypatch, capsys, root) -> dict:
    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    assert cli.main(["status", "--json"]) == 0
    return {row["source"]: row for row in json.loads(capsys.readouterr().out)["sources"]}


def test_status_lists_every_task_source_with_count_and_fingerprint(monkeypatch, capsys):
    rows = _status(monkeypatch, capsys, DEMO)
    assert set(rows) == {
        "edinet_earnings",
        "edinet_fraud",
        "edinet_industry",
        "chabsa",
        "cma_basics",
        "cpa_audit",
        "fp2",
        "security_sales_1",
        "gsm8k",
    }
    assert all(row["present"] for row in rows.values())
    assert rows["edinet_industry"]["n_docs"] == 32
    assert rows["cpa_audit"]["n_docs"] == 3  # the flagged-abnormal row is left out
    assert rows["chabsa"]["fingerprint"].startswith("sha256:")


def test_status_shows_missing_files(monkeypatch, capsys, tmp_path):
    rows = _status(monkeypatch, capsys, tmp_path)
    assert not any(row["present"] for row in rows.values())
    assert rows["gsm8k"]["missing"] == str(tmp_path / "gsm8k" / "test.jsonl")


def test_fetch_offline_fails_with_a_clear_message_and_exit_2(tmp_path):
    run = run_cli(
        ["compass-data", "fetch", "jp_fin_harness"], cwd=tmp_path, COMPASS_DATA_DIR=str(tmp_path)
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(
        "compass-data: fetch jp_fin_harness failed: cannot download https://"
    )
    assert "compass-data import jp_fin_harness <path>" in run.stderr


def test_import_copies_a_local_copy_and_checks_it(monkeypatch, capsys, tmp_path):
    source, root = tmp_path / "copy", tmp_path / "root"
    shutil.copytree(DEMO / "jp_fin_harness", source)
    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    assert cli.main(["import", "jp_fin_harness", str(source)]) == 0
    capsys.readouterr()
    rows = _status(monkeypatch, capsys, root)
    assert rows["cma_basics"]["n_docs"] == 16 and rows["chabsa"]["n_docs"] == 7
    assert (
        rows["cma_basics"]["fingerprint"]
        == _status(monkeypatch, capsys, DEMO)["cma_basics"]["fingerprint"]
    )


@pytest.mark.parametrize("content", [None, "{not json"])
def test_import_refuses_an_empty_or_broken_copy(monkeypatch, capsys, tmp_path, content):
    source = tmp_path / "copy"
    source.mkdir()
    if content is not None:
        (source / "fp2.json").write_text(content, encoding="utf-8")
    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "root"))
    assert cli.main(["import", "jp_fin_harness", str(source)]) == 2
    assert capsys.readouterr().err.startswith("compass-data: ")


def test_the_training_data_verbs_share_the_command(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path} is not a dataset folder")
