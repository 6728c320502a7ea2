"""Acceptance: `lm_eval --model compass --tasks compass_suite` on the bundled demo data, the
headline metrics and data fingerprints in its results JSON, Compass's GSM8K on local data beside
lm-eval's own, and the JP Fin Harness leaderboard group."""

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
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(
        results["compass_gsm8k"]
    )
    five = [results["chabsa"]["f1,none"]] + [
        results[task]["acc,none"] for task in ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
    ]
    assert results["jp_fin_harness"]["score,none"] == pytest.approx(sum(five) / 5)


def test_results_record_data_root_fingerprint_and_prompt_variant(suite_run):
    configs = suite_run[0]["configs"]
    assert set(HEADLINES) | {"compass_gsm8k"} <= set(configs)
    for task in set(HEADLINES) | {"compass_gsm8k"}:
        metadata = configs[task]["metadata"]
        assert metadata["data_root"] == str(DEMO)
        assert metadata["data_fingerprint"].startswith("sha256:")
        assert metadata["prompt_variant"] == "default"
    # documents that are not independent are resampled as clusters by the report
    assert configs["edinet_fraud"]["metadata"]["cluster_key"] == "edinet_code"
    assert configs["chabsa"]["metadata"]["cluster_key"] == "source_file"
    edinet = configs["edinet_fraud"]["metadata"]
    assert edinet["max_report_chars"] == 3072 and edinet["context_tokens"] == 4096
    assert edinet["report_budget"].startswith("auto")


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


# What makes two GSM8K tasks score alike: prompt, splits, few-shot count, generation, filters, metric.
SCORING_KEYS = (
    "output_type",
    "training_split",
    "fewshot_split",
    "test_split",
    "doc_to_text",
    "doc_to_target",
    "metric_list",
    "generation_kwargs",
    "repeats",
    "num_fewshot",
    "filter_list",
)


def test_compass_gsm8k_reads_the_local_files_and_scores_as_lm_evals_gsm8k(monkeypatch):
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    monkeypatch.setenv("COMPASS_DATA_DIR", str(SHARED_DATA))
    manager = TaskManager()
    ours_path = manager.task_index["compass_gsm8k"].yaml_path
    assert ours_path == REPO / "tasks" / "gsm8k" / "compass_gsm8k.yaml"
    ours = load_yaml(ours_path, resolve_func=False)
    theirs = load_yaml(manager.task_index["gsm8k"].yaml_path, resolve_func=False)
    assert {key: ours[key] for key in SCORING_KEYS} == {key: theirs[key] for key in SCORING_KEYS}
    assert ours["metadata"]["version"] == theirs["metadata"]["version"]
    assert "tag" not in ours

    task = manager.load(["compass_gsm8k"])["tasks"]["compass_gsm8k"]
    assert len(task.eval_docs) == 1319
    assert task.config.num_fewshot == 5 and len(task.fewshot_docs()) == 7473
    assert task.config.metadata["data_root"] == str(SHARED_DATA.resolve())


EXAMS = ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
VARIANTS = (
    "1.0-0.1",
    "1.0-0.1.2",
    "1.0-0.2",
    "1.0-0.2.1",
    "1.0-0.3",
    "1.0-0.4",
    "1.0-0.5",
    "1.0-0.6",
)
# chabsa has no 0.1.2 / 0.2.1 prompt: the harness's runs of those variants take its 0.1 / 0.2.
CHABSA_OF = {"1.0-0.1.2": "1.0-0.1", "1.0-0.2.1": "1.0-0.2"}
LEADERBOARD = {  # the harness's nine leaderboard runs (developments/generate_harness_sh.py)
    "jp_fin_harness": ["chabsa", *EXAMS],
    **{
        f"jp_fin_harness-{v}": [f"chabsa-{CHABSA_OF.get(v, v)}", *(f"{t}-{v}" for t in EXAMS)]
        for v in VARIANTS
    },
}


def test_leaderboard_group_runs_the_nine_variants_zero_shot(monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("COMPASS_DATA_DIR", "demo")
    loaded = TaskManager().load(["jp_fin_harness_leaderboard"])
    group_map = loaded["group_map"]
    assert group_map["jp_fin_harness_leaderboard"] == list(LEADERBOARD)
    assert {group: group_map[group] for group in LEADERBOARD} == LEADERBOARD
    every_task = {task for members in LEADERBOARD.values() for task in members}
    assert set(loaded["tasks"]) == every_task and len(every_task) == 43
    for task in loaded["tasks"].values():
        assert task.config.num_fewshot in (None, 0) and task.config.fewshot_split is None
        assert not task.has_training_docs() and not task.has_validation_docs()
