"""Acceptance: `lm_eval --model compass --tasks compass_suite` on the bundled demo data, the
headline metrics and data fingerprints in its results JSON, and gsm8k overriding the built-in."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from clitools import REPO, SHARED_DATA, run_cli
from sklearn.metrics import roc_auc_score

DEMO = REPO / "compass_eval" / "demo_data"
HEADLINES = {  # DESIGN.md's contract: task -> metric keys the report reads
    "edinet_earnings": ["roc_auc", "acc", "f1", "mcc"],
    "edinet_fraud": ["roc_auc", "acc", "f1", "mcc"],
    "edinet_industry": ["acc", "macro_f1"],
    "chabsa": ["f1", "acc", "acc_norm"],
    "cma_basics": ["acc", "acc_norm"],
    "cpa_audit": ["acc", "acc_norm"],
    "fp2": ["acc", "acc_norm"],
    "security_sales_1": ["acc", "acc_norm"],
    "gsm8k_cot_xml": ["exact_match"],
}


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    run = run_cli(
        ["lm_eval", "--model", "compass", "--tasks", "compass_suite"]
        + ["--output_path", str(out), "--log_samples"]
        # An untrained model never stops by itself: short generations keep the run quick.
        + ["--gen_kwargs", "max_gen_toks=16"],
        cwd=out,
        COMPASS_DATA_DIR="demo",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    return json.loads(results.read_text()), results.parent


def test_suite_completes_with_every_headline_metric(suite_run):
    results = suite_run[0]["results"]
    for task, metrics in HEADLINES.items():
        for metric in metrics:
            assert isinstance(results[task][f"{metric},none"], float), (task, metric)
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(results["gsm8k"])
    five = [results["chabsa"]["f1,none"]] + [
        results[task]["acc,none"] for task in ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
    ]
    assert results["jp_fin_harness"]["score,none"] == pytest.approx(sum(five) / 5)


def test_results_record_data_root_fingerprint_and_prompt_variant(suite_run):
    configs = suite_run[0]["configs"]
    assert set(HEADLINES) | {"gsm8k"} <= set(configs)
    for task in set(HEADLINES) | {"gsm8k"}:
        metadata = configs[task]["metadata"]
        assert metadata["data_root"] == str(DEMO)
        assert metadata["data_fingerprint"].startswith("sha256:")
        assert metadata["prompt_variant"] == "default"
    assert configs["edinet_fraud"]["metadata"]["max_report_chars"] == 12000


def test_edinet_samples_carry_label_and_probability_from_the_two_answers(suite_run):
    (samples,) = suite_run[1].glob("samples_edinet_fraud_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    pairs = []
    for row in rows:
        (ll_no, _), (ll_yes, _) = [resp[0] for resp in row["resps"]]
        label, probability = row["roc_auc"]
        assert label == row["doc"]["gold"]
        assert probability == pytest.approx(1 / (1 + math.exp(float(ll_no) - float(ll_yes))))
        pairs.append((label, probability))
    expected = roc_auc_score([y for y, _ in pairs], [p for _, p in pairs])
    assert suite_run[0]["results"]["edinet_fraud"]["roc_auc,none"] == pytest.approx(expected)


def _configs_on(root, monkeypatch) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("COMPASS_DATA_DIR", str(root))
    return lm_eval.simple_evaluate(
        model="compass",
        tasks=["cma_basics", "fp2"],
        task_manager=TaskManager(include_defaults=False),
    )["configs"]


def test_a_run_on_different_data_differs_in_the_fingerprint(tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(DEMO, root)
    path = root / "jp_fin_harness" / "cma_basics.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["data"][0]["question"] += "（改訂）"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    before, changed = _configs_on(DEMO, monkeypatch), _configs_on(root, monkeypatch)
    fingerprint = {
        task: (
            before[task]["metadata"]["data_fingerprint"],
            changed[task]["metadata"]["data_fingerprint"],
        )
        for task in ("cma_basics", "fp2")
    }
    assert fingerprint["cma_basics"][0] != fingerprint["cma_basics"][1]
    assert fingerprint["fp2"][0] == fingerprint["fp2"][1]
    assert changed["cma_basics"]["metadata"]["data_root"] == str(root)


def test_our_gsm8k_overrides_the_builtin_and_reads_the_local_files(monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("COMPASS_DATA_DIR", str(SHARED_DATA))
    manager = TaskManager()  # with lm-eval's own tasks, whose gsm8k ours must replace
    task = manager.load(["gsm8k"])["tasks"]["gsm8k"]
    assert task.config.metadata["config_source"] == str(REPO / "tasks" / "gsm8k" / "gsm8k.yaml")
    assert len(task.eval_docs) == 1319
    assert task.config.num_fewshot == 5 and len(task.fewshot_docs()) == 7473
    assert task.config.metadata["data_root"] == str(SHARED_DATA.resolve())
