"""The edinet_bench_* tasks against EDINET-Bench's own code (SakanaAI/EDINET-Bench at commit
797fbb50051c14b97ee2fd88595b0a3c12432058), on SYNTHETIC records in its exact schema."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest
from clitools import run_cli
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from compass_eval import metrics
from compass_eval.data.edinet import upstream_prompt

COMMIT = "797fbb50051c14b97ee2fd88595b0a3c12432058"
# sha256 of `yaml.safe_load(prompt/<task>.yaml)["prompt"]` in SakanaAI/EDINET-Bench at COMMIT
UPSTREAM_PROMPT_SHA256 = {
    "earnings_forecast": "74f6cfc4cfde1282c922551ed1d8f3d0f6b09fe720b34f736c1446bf58ecd343",
    "fraud_detection": "99eeb0fba13d294b41664946f3b42723278ec699618cc31eae9eae9fc627b657",
    "industry_prediction": "9b767926e27cf31d449c46e70d0f8c8db5e89e9aab6155d66b79dd1582811d39",
}
TASKS = {
    "edinet_bench_earnings": "earnings_forecast",
    "edinet_bench_fraud": "fraud_detection",
    "edinet_bench_industry": "industry_prediction",
}
SYSTEM_PROMPT = "You are a financial analyst."  # predict.py's --system_prompt default


def _record(task: str, i: int) -> dict:
    """A SYNTHETIC record in EDINET-Bench's schema (statements as JSON strings)."""
    sheet = lambda name: json.dumps(  # noqa: E731
        {f"{name}項目{k}": {"Prior1Year": str(100 * k + i), "CurrentYear": "-"} for k in range(3)},
        ensure_ascii=False,
    )
    record = {
        "meta": json.dumps({"会社名": f"合成株式会社{i}", "note": "SYNTHETIC"}, ensure_ascii=False),
        "summary": sheet("要約"),
        "bs": sheet("資産"),
        "pl": sheet("損益"),
        "cf": sheet("現金"),
        "text": json.dumps({"事業の内容": "合成データ\n改行あり"}, ensure_ascii=False),
        "edinet_code": f"E9{i:04d}",
        "doc_id": f"S100SYN{i}",
    }
    if task == "industry_prediction":
        return {**record, "industry": ["小売", "銀行"][i % 2]}
    return {**record, "label": i % 2}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edinet_bench_data")
    for task, split in (
        ("earnings_forecast", "test"),
        ("fraud_detection", "test"),
        ("industry_prediction", "train"),
    ):
        path = root / "edinet" / task / f"{split}.jsonl"
        path.parent.mkdir(parents=True)
        lines = [json.dumps(_record(task, i), ensure_ascii=False) for i in range(4)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tasks(data_root):
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPASS_DATA_DIR", str(data_root))
        return TaskManager(include_defaults=False).load(["edinet_bench"])["tasks"]


def test_the_group_holds_the_three_tasks(tasks):
    assert set(TASKS) <= set(tasks)


@pytest.mark.parametrize("name", list(TASKS))
def test_user_text_is_upstream_construction_byte_for_byte(tasks, name):
    upstream_task = TASKS[name]
    prompt = upstream_prompt(upstream_task)
    assert (
        hashlib.sha256(prompt.encode("utf-8")).hexdigest() == UPSTREAM_PROMPT_SHA256[upstream_task]
    )
    task = tasks[name]
    for doc in task.eval_docs:
        # predict.py / industry_prediction/predict.py, process_example
        expected = prompt + "\n".join(
            [f"{sheet}: {doc[sheet]}" for sheet in ["summary", "bs", "pl", "cf"] if sheet in doc]
        )
        assert task.doc_to_text(doc) == expected
    glue = "as follows:\nsummary: " if name == "edinet_bench_industry" else "as follows:summary: "
    assert glue in task.doc_to_text(task.eval_docs[0])


@pytest.mark.parametrize("name", list(TASKS))
def test_system_prompt_is_the_description_and_the_system_turn(tasks, name):
    task = tasks[name]
    assert task.config.description == SYSTEM_PROMPT
    doc = task.eval_docs[0]
    messages = task.fewshot_context(
        doc, 0, apply_chat_template=True, chat_template=lambda turns, **_: turns
    )
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": task.doc_to_text(doc)},
    ]


@pytest.mark.parametrize("name", list(TASKS))
def test_generation_is_greedy_with_upstreams_token_limit(tasks, name):
    kwargs = tasks[name].config.generation_kwargs
    assert kwargs["do_sample"] is False and kwargs["temperature"] == 0.0
    assert kwargs["max_gen_toks"] == 4096 and kwargs["until"] == []
    split = "train" if name == "edinet_bench_industry" else "test"
    assert tasks[name].config.test_split == split


def _upstream_extract_json_between_markers(llm_output: str) -> dict | None:
    """Reference: EDINET-Bench's src/edinet_bench/utils.py at COMMIT, re-implemented here
    statement by statement because that module needs API clients (anthropic, weave) to import."""
    matches = re.findall(r"```json(.*?)```", llm_output, re.DOTALL)
    if not matches:
        matches = re.findall(r"\{.*?\}", llm_output, re.DOTALL)
    for json_string in matches:
        json_string = json_string.strip()
        try:
            return json.loads(json_string)
        except json.JSONDecodeError:
            try:
                return json.loads(re.sub(r"[\x00-\x1F\x7F]", "", json_string))
            except json.JSONDecodeError:
                continue
    return None


REPLIES = {
    "fenced": 'THOUGHT\n```json\n{"reasoning": "ok", "prob": 0.8, "prediction": 1}\n```',
    "fenced, two blocks, first broken": '```json\n{"prob": }\n```\n```json\n{"prob": 0.3}\n```',
    "fenced broken, bare valid after it": '```json\n{"prob": 0.3,}\n```\n{"prob": 0.9}',
    "bare": 'I think {"prob": 0.2, "prediction": 0} is right.',
    "bare, broken then valid": '{"prob": oops} and then {"prob": 0.6, "prediction": 1}',
    "bare nested": '{"a": {"prob": 0.4}, "prediction": 1}',
    "control character in a string": '```json\n{"reasoning": "line\nbreak", "prob": 0.7}\n```',
    "tab in a bare string": '{"reasoning": "a\tb", "prediction": 0, "prob": 0.1}',
    "fenced list": "```json\n[1, 2]\n```",
    "unclosed fence": '```json\n{"prob": 0.5, "prediction": 1}',
    "none": "I cannot tell.",
    "empty": "",
    "json5 style": "{prob: 0.5}",
}


@pytest.mark.parametrize("case", list(REPLIES))
def test_json_extraction_agrees_with_upstream(case):
    reply = REPLIES[case]
    assert metrics.extract_json_reply(reply) == _upstream_extract_json_between_markers(reply)


def test_json_extraction_table_covers_every_outcome():
    outcomes = [metrics.extract_json_reply(reply) for reply in REPLIES.values()]
    assert None in outcomes and [1, 2] in outcomes
    assert {"reasoning": "linebreak", "prob": 0.7} in outcomes  # control characters stripped
    nested = metrics.extract_json_reply(REPLIES["bare nested"])
    assert nested is None  # the shortest {...} of a nested object does not parse, upstream too


BINARY_REPLIES = [
    # reply, label, expected (prob, prediction) kept, or None when the row is dropped
    ('```json\n{"reasoning": "r", "prob": 0.9, "prediction": 1}\n```', 1, (0.9, 1)),
    ('{"prob": 0.2, "prediction": 0}', 0, (0.2, 0)),
    ('{"prob": "0.6", "prediction": "1"}', 0, (0.6, 1)),
    ('{"prob": 0.4}', 1, None),  # no prediction: dropped from every metric
    ('{"prediction": 1}', 1, None),  # no prob: dropped from every metric
    ('{"prob": "high", "prediction": 1}', 0, None),
    ('{"prob": 0.7, "prediction": 2}', 1, None),
    ("no json at all", 0, None),
    ('{"prob": 0.35, "prediction": 0}', 1, (0.35, 0)),
    ('{"prob": 0.55, "prediction": 1}', 0, (0.55, 1)),
]


def test_binary_per_sample_values_and_aggregates_follow_make_leaderboard(tasks):
    task = tasks["edinet_bench_fraud"]
    rows = [
        task.process_results({**task.eval_docs[0], "label": label}, [reply])
        for reply, label, _ in BINARY_REPLIES
    ]
    for row, (_, label, kept) in zip(rows, BINARY_REPLIES, strict=True):
        prob, pred = kept if kept else (None, None)
        assert row["roc_auc"] == [label, prob]
        assert all(row[name] == [label, pred] for name in ("acc", "precision", "f1", "mcc"))
        assert row["parsed_fraction"] == float(kept is not None)
    labels = [label for _, label, kept in BINARY_REPLIES if kept]
    probs = [kept[0] for *_, kept in BINARY_REPLIES if kept]
    preds = [kept[1] for *_, kept in BINARY_REPLIES if kept]
    column = lambda name: [row[name] for row in rows]  # noqa: E731
    assert metrics.roc_auc(column("roc_auc")) == roc_auc_score(labels, probs)
    assert metrics.accuracy(column("acc")) == accuracy_score(labels, preds)
    assert metrics.precision(column("precision")) == precision_score(labels, preds)
    assert metrics.recall(column("recall")) == recall_score(labels, preds)
    assert metrics.binary_f1(column("f1")) == f1_score(labels, preds)
    assert metrics.mcc(column("mcc")) == matthews_corrcoef(labels, preds)
    assert sum(column("parsed_fraction")) / len(rows) == 0.5


def test_nothing_parsed_gives_undefined_scores_not_zero():
    dropped = [[0, None], [1, None]]
    for metric in (metrics.roc_auc, metrics.accuracy, metrics.binary_f1, metrics.mcc):
        assert math.isnan(metric(dropped))


def test_industry_counts_exact_categories_of_the_replies_that_give_one(tasks):
    task = tasks["edinet_bench_industry"]
    doc = task.eval_docs[0]
    assert doc["industry"] == "小売"
    replies = {
        '```json\n{"reasoning": "店舗", "prediction": "小売"}\n```': (1.0, 1.0),
        '{"prediction": "銀行"}': (0.0, 1.0),
        '{"prediction": "小売業"}': (0.0, 1.0),  # no normalisation, as accuracy_score
        '{"reasoning": "unsure"}': (None, 0.0),
        "小売": (None, 0.0),
    }
    rows = [task.process_results(doc, [reply]) for reply in replies]
    assert [(row["acc"], row["parsed_fraction"]) for row in rows] == list(replies.values())
    assert metrics.mean_of_scored([row["acc"] for row in rows]) == pytest.approx(1 / 3)


def test_lm_eval_cli_writes_roc_auc_parsed_fraction_and_classification_metrics(data_root, tmp_path):
    run = run_cli(
        ["lm_eval", "--model", "compass", "--tasks", "edinet_bench_fraud", "--limit", "2"]
        + ["--apply_chat_template", "--gen_kwargs", "max_gen_toks=8"]
        + ["--log_samples", "--output_path", str(tmp_path / "out")],
        cwd=tmp_path,
        COMPASS_DATA_DIR=str(data_root),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    scores = json.loads(results_file.read_text())["results"]["edinet_bench_fraud"]
    for name in ("roc_auc", "parsed_fraction", "acc", "precision", "recall", "f1", "mcc"):
        assert f"{name},none" in scores
    (samples_file,) = (tmp_path / "out").rglob("samples_edinet_bench_fraud_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 2
    for sample in samples:
        label = sample["doc"]["label"]
        prob = sample["roc_auc"][1]
        assert sample["roc_auc"][0] == label
        assert sample["parsed_fraction"] == float(prob is not None)
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        assert (
            SYSTEM_PROMPT in prompt and "The extracted securities report is as follows:" in prompt
        )
    assert scores["parsed_fraction,none"] == sum(s["parsed_fraction"] for s in samples) / 2
