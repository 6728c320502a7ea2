"""Data root, missing-file errors and the `compass-data` CLI (status, fetch, import)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest
from clitools import REPO, run_cli

from compass_cli import data as cli
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
        "edinet_bench_earnings",
        "edinet_bench_fraud",
        "edinet_bench_industry",
        "chabsa",
        "cma_basics",
        "cpa_audit",
        "fp2",
        "security_sales_1",
        "gsm8k",
    }
    assert all(row["present"] for row in rows.values())
    assert rows["edinet_industry"]["n_docs"] == rows["edinet_bench_industry"]["n_docs"] == 32
    assert rows["edinet_industry"]["split"] == "train" and rows["edinet_fraud"]["split"] == "test"
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


def _tree(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_broken_import_leaves_the_good_data_as_it_was(monkeypatch, capsys, tmp_path):
    """Checked before it replaces anything: a bad copy cannot spoil a good data root."""
    root = tmp_path / "root"
    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    assert cli.main(["import", "jp_fin_harness", str(DEMO / "jp_fin_harness")]) == 0
    before = _tree(root)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fp2.json").write_text("{not json", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["import", "jp_fin_harness", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compass-data: imported fp2 does not load") and err.count("\n") == 1
    assert _tree(root) == before


def test_import_refuses_symbolic_links(monkeypatch, capsys, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not benchmark data", encoding="utf-8")
    source = tmp_path / "copy"
    shutil.copytree(DEMO / "jp_fin_harness", source)
    (source / "fp2.json").unlink()
    (source / "fp2.json").symlink_to(secret)
    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "root"))
    assert cli.main(["import", "jp_fin_harness", str(source)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_the_training_data_verbs_share_the_command(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path} is not a dataset folder")


# The hub repository's layout (SakanaAI/EDINET-Bench): one folder per task, one parquet file per
# split, declared in the dataset card's `configs`; industry has a train split only.
HUB_CARD = """---
configs:
- config_name: earnings_forecast
  data_files:
  - split: train
    path: earnings_forecast/train-*
  - split: test
    path: earnings_forecast/test-*
- config_name: fraud_detection
  data_files:
  - split: train
    path: fraud_detection/train-*
  - split: test
    path: fraud_detection/test-*
- config_name: industry_prediction
  data_files:
  - split: train
    path: industry_prediction/train-*
---
# SYNTHETIC local stand-in of SakanaAI/EDINET-Bench
"""
SHEETS = ("meta", "summary", "bs", "pl", "cf", "text")


def _hub_record(task: str, split: str, i: int) -> dict:
    """A SYNTHETIC row with the hub's columns for `task` (its dataset card's features)."""
    row = {sheet: json.dumps({f"{sheet}{i}": split}) for sheet in SHEETS}
    ids = {"edinet_code": f"E9{i:04d}", "doc_id": f"S{split}{i}"}
    if task == "earnings_forecast":
        extra = {"label": i % 2, "naive_prediction": 0, "previous_year_file_path": "-"}
        return {**row, **extra, **ids, "current_year_file_path": "-"}
    if task == "fraud_detection":
        extra = {"label": i % 2, "explanation": "-", "ammended_doc_id": "-"}
        return {**row, **extra, **ids, "file_path": "-"}
    return {**row, "industry": ["小売", "銀行"][i % 2], **ids, "file_path": "-"}


def _stand_in_hub(folder: Path, with_industry: bool = True) -> Path:
    folder.mkdir()
    (folder / "README.md").write_text(HUB_CARD, encoding="utf-8")
    splits = {"earnings_forecast": 3, "fraud_detection": 4}
    for task in splits:
        for split, n in (("train", 5), ("test", splits[task])):
            rows = [_hub_record(task, split, i) for i in range(n)]
            (folder / task).mkdir(exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(folder / task / f"{split}-00000.parquet")
    if with_industry:
        (folder / "industry_prediction").mkdir()
        rows = [_hub_record("industry_prediction", "train", i) for i in range(6)]
        path = folder / "industry_prediction" / "train-00000.parquet"
        datasets.Dataset.from_list(rows).to_parquet(path)
    return folder


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_fetch_edinet_takes_each_tasks_evaluated_split(monkeypatch, capsys, tmp_path):
    hub, root = _stand_in_hub(tmp_path / "hub"), tmp_path / "root"
    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    assert cli.main(["fetch", "edinet", "--from", str(hub)]) == 0
    printed = capsys.readouterr().out
    assert any(line.split()[:2] == ["edinet_industry", "train"] for line in printed.splitlines())
    assert sorted(_tree(root)) == [
        "edinet/earnings_forecast/test.jsonl",
        "edinet/fraud_detection/test.jsonl",
        "edinet/industry_prediction/train.jsonl",
    ]
    rows = _status(monkeypatch, capsys, root)
    assert rows["edinet_earnings"]["n_docs"] == 3 and rows["edinet_fraud"]["n_docs"] == 4
    assert rows["edinet_industry"]["n_docs"] == 6 and rows["edinet_industry"]["split"] == "train"
    fraud = (root / "edinet" / "fraud_detection" / "test.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["doc_id"] for line in fraud.splitlines()] == [
        f"Stest{i}" for i in range(4)
    ]


@pytest.mark.parametrize("existing", [True, False])
def test_fetch_failing_midway_leaves_the_data_root_unchanged(
    monkeypatch, capsys, tmp_path, existing
):
    hub, root = _stand_in_hub(tmp_path / "hub", with_industry=False), tmp_path / "root"
    if existing:
        old = root / "edinet" / "fraud_detection" / "test.jsonl"
        old.parent.mkdir(parents=True)
        old.write_text('{"old": 1}\n', encoding="utf-8")
    before = _tree(root) if existing else None
    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    # earnings and fraud load, then industry's split is missing
    assert cli.main(["fetch", "edinet", "--from", str(hub)]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after the hub client's progress bars
    assert error.startswith("compass-data: fetch edinet failed: cannot load ")
    assert "industry_prediction split train" in error
    if existing:
        assert _tree(root) == before and sorted(p.name for p in root.iterdir()) == ["edinet"]
    else:
        assert not root.exists()
