"""chABSA and EDINET-Bench tasks on synthetic fixtures in their exact schemas (tests/fixtures)."""

from __future__ import annotations

import json

import pytest
from clitools import REPO
from lm_eval.api.task import ConfigurableTask

from compass_eval.data.edinet import (
    CHARS_PER_TOKEN,
    INDUSTRIES,
    RESERVED_TOKENS,
    TRUNCATION_MARK,
    read_records,
    upstream_prompt,
)
from compass_model.errors import CompassInputError

FIXTURES = REPO / "tests" / "fixtures" / "tasks"
CHABSA = {
    # variant: (description, text template, target delimiter), from the harness's chabsa configs
    "default": (
        "以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n\n",
        "センテンス: {s}\nターゲット: {t}\n回答:",
        " ",
    ),
    "1.0-0.1": (
        "[センテンス]における、[ターゲット]のセンチメントをpositiveかnegativeで選んでください。\n\n\n",
        "[センテンス]: {s}\nターゲット]: {t}\n[答え]:",
        " ",
    ),
    "1.0-0.2": (
        "センテンスとターゲットを入力として受け取り、ターゲットに関するセンチメントをpositiveかnegativeから選択してください。\n\n\n",
        "センテンス: {s}\nターゲット: {t}\n回答:",
        " ",
    ),
    "1.0-0.3": (
        "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
        "### 指示:\n以下のセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n\n",
        "### 入力:\nセンテンス:{s}\nターゲット:{t}\n\n### 応答:\n\n",
        "",
    ),
    "1.0-0.4": (
        "ユーザー: センテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。<NL>システム: 分かりました。<NL>",
        "センテンス: {s}<NL>ターゲット: {t}<NL>システム:",
        " ",
    ),
    "1.0-0.5": (
        "ユーザー: センテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\nシステム: 分かりました。\n\n",
        "センテンス: {s}\nターゲット: {t}\nシステム:",
        " ",
    ),
    "1.0-0.6": (
        None,  # the Llama-2 system header, checked by its first and last lines
        "与えられたセンテンスにおける、ターゲットのセンチメントをpositiveかnegativeで答えてください。\n\n"
        "センテンス: {s}\nターゲット: {t} [/INST]",
        " ",
    ),
}


@pytest.fixture(scope="module")
def fixture_root():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPASS_DATA_DIR", str(FIXTURES))
        yield FIXTURES


def _load(names, **metadata):
    from lm_eval.tasks import TaskManager

    # Our folder only (the start-up hook adds it): indexing lm-eval's own tasks takes seconds.
    return TaskManager(include_defaults=False, metadata=metadata or None).load(names)["tasks"]


@pytest.fixture(scope="module")
def chabsa_tasks(fixture_root):
    return _load([v if v == "chabsa" else f"chabsa-{v}" for v in ("chabsa", *list(CHABSA)[1:])])


@pytest.mark.parametrize("variant", list(CHABSA))
def test_chabsa_prompts_render_as_the_harness(chabsa_tasks, variant):
    task = chabsa_tasks["chabsa" if variant == "default" else f"chabsa-{variant}"]
    description, template, delimiter = CHABSA[variant]
    docs = task.eval_docs
    assert len(docs) == 3  # one record per opinion: 1 + 2
    for doc in (docs[0], docs[len(docs) - 1]):
        context = task.fewshot_context(doc, 0)
        body = template.format(s=doc["sentence"], t=doc["target"])
        if description is None:
            assert context.startswith("<s>[INST] <<SYS>>\nYou are a helpful, respectful")
            assert context.endswith("\n<</SYS>>\n\n\n" + body)
        else:
            assert context == description + body
        assert task.doc_to_choice(doc) == ["positive", "negative"]
        assert task.config.target_delimiter == delimiter


def test_chabsa_neutral_gold_scores_as_an_unoffered_class(chabsa_tasks):
    task = chabsa_tasks["chabsa"]
    neutral = task.eval_docs[2]
    assert neutral["polarity"] == "neutral"
    scores = task.process_results(neutral, [(-1.0, False), (-2.0, False)])
    assert scores["f1"] == (-100, 0)
    assert scores["acc"] == 0.0
    assert scores["score"] == scores["f1"]


FRAUD_QUESTION = (
    "\n\nQuestion: Does this securities report show signs of fraud? Answer Yes or No.\nAnswer:"
)


def test_edinet_prompt_is_the_upstream_user_text_then_the_question(fixture_root):
    task = _load(["edinet_fraud"], max_length=8192)["edinet_fraud"]
    doc = task.eval_docs[0]
    record = read_records("fraud_detection")[0]
    upstream = upstream_prompt("fraud_detection") + "\n".join(
        f"{sheet}: {record[sheet]}" for sheet in ("summary", "bs", "pl", "cf")
    )
    assert not doc["truncated"]
    assert task.fewshot_context(doc, 0) == upstream + FRAUD_QUESTION
    assert upstream_prompt("fraud_detection").startswith(
        "Please analyze the following information extracted from a Japanese company's securities "
        "report for any signs of fraudulent activities.\nPlease note"
    )


def test_edinet_sheets_share_an_explicit_budget_and_the_prompt_around_stays(fixture_root):
    task = _load(["edinet_fraud"], max_report_chars=1200)["edinet_fraud"]
    context = task.fewshot_context(task.eval_docs[0], 0)
    assert context.startswith(upstream_prompt("fraud_detection"))
    assert context.endswith(FRAUD_QUESTION)
    lines = task.eval_docs[0]["report"].split("\n")
    sheets = [line.split(": ", 1) for line in lines]
    assert [name for name, _ in sheets] == ["summary", "bs", "pl", "cf"]
    kept = {name: text.removesuffix(TRUNCATION_MARK) for name, text in sheets}
    # the fixture's sheets hold 369, 1400, 1151 and 200 characters: cf stays whole, and its
    # unused share goes to the three others
    assert {name: len(text) for name, text in kept.items()} == {
        "summary": 333,
        "bs": 334,
        "pl": 333,
        "cf": 200,
    }
    assert [text.endswith(TRUNCATION_MARK) for _, text in sheets] == [True, True, True, False]
    metadata = task.config.metadata
    assert metadata["max_report_chars"] == 1200 and metadata["report_budget"] == "explicit"
    assert metadata["n_truncated"] == metadata["n_docs"] == 4
    assert metadata["sheets"] == ["summary", "bs", "pl", "cf"]
    assert metadata["truncation"].startswith("the sheets share max_report_chars")


def test_edinet_default_budget_follows_the_model_context(fixture_root):
    tiny = _load(["edinet_fraud"])["edinet_fraud"].config.metadata  # no model args: tiny model
    assert tiny["context_tokens"] == 4096
    assert tiny["max_report_chars"] == (4096 - RESERVED_TOKENS) * CHARS_PER_TOKEN
    assert tiny["report_budget"].startswith("auto")
    assert tiny["n_truncated"] == 4  # 3,120 characters of sheets: only bs is cut
    wide = _load(["edinet_fraud"], max_length=8192)["edinet_fraud"].config.metadata
    assert wide["context_tokens"] == 8192 and wide["n_truncated"] == 0
    assert wide["data_fingerprint"] != tiny["data_fingerprint"]


def test_edinet_budget_reads_the_checkpoint_context(fixture_root, tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "llama", "max_position_embeddings": 2048})
    )
    metadata = _load(["edinet_fraud"], pretrained=str(tmp_path))["edinet_fraud"].config.metadata
    assert metadata["context_tokens"] == 2048
    assert metadata["max_report_chars"] == 2048 - RESERVED_TOKENS


@pytest.mark.parametrize("setting", ["lots", -5])
def test_edinet_refuses_a_bad_budget(fixture_root, setting):
    with pytest.raises(CompassInputError, match="max_report_chars"):
        _load(["edinet_fraud"], max_report_chars=setting)


def test_edinet_sheets_are_selectable(fixture_root):
    task = _load(["edinet_fraud"], sheets=["text"])["edinet_fraud"]
    assert task.eval_docs[0]["report"].startswith("text: {")
    assert "\nbs: " not in task.eval_docs[0]["report"]


def test_edinet_probability_is_normalised_over_the_two_answers(fixture_root):
    task = _load(["edinet_fraud"])["edinet_fraud"]
    doc = task.eval_docs[1]
    scores = task.process_results(doc, [(-3.0, False), (-1.0, True)])  # choices: No, Yes
    assert scores["roc_auc"] == [1, pytest.approx(1 / (1 + 2.718281828459045**-2))]
    assert scores["acc"] == 1.0 and scores["f1"] == [1, 1] and scores["mcc"] == [1, 1]


@pytest.fixture(scope="module")
def industry_task():
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPASS_DATA_DIR", "demo")
        return TaskManager(include_defaults=False).load(["edinet_industry"])["tasks"][
            "edinet_industry"
        ]


def test_industry_is_a_16_way_choice_over_the_edinet_bench_labels_on_train(industry_task):
    task = industry_task
    assert task.config.test_split == "train" and len(task.eval_docs) == 32
    doc = task.eval_docs[0]
    assert task.doc_to_choice(doc) == list(INDUSTRIES) and len(INDUSTRIES) == 16
    assert task.doc_to_target(doc) == INDUSTRIES.index("食品")
    context = task.fewshot_context(doc, 0)
    assert context.startswith(upstream_prompt("industry_prediction"))
    assert context.endswith("belong to?\nAnswer:")


def test_industry_acc_norm_divides_by_label_length_as_lm_eval_does(industry_task):
    task = industry_task
    doc = task.eval_docs[0]  # gold 食品: 2 characters, 6 bytes
    other = INDUSTRIES.index("金融(除く銀行)")  # 8 characters, 20 bytes
    logliks = [-30.0] * 16
    logliks[doc["gold"]], logliks[other] = -1.0, -3.6
    results = [(loglik, False) for loglik in logliks]
    ours = task.process_results(doc, results)
    # summed: 食品 wins; per character: -0.5 < -0.45, the other wins; per byte 食品 would win
    assert (ours["acc"], ours["acc_norm"]) == (1.0, 0.0)
    assert ours["macro_f1"] == [doc["gold"], doc["gold"]]
    with pytest.MonkeyPatch.context() as patch:  # lm-eval's own multiple-choice scoring
        patch.setattr(task.config, "process_results", None)
        own = ConfigurableTask.process_results(task, doc, results)
    assert (own["acc"], own["acc_norm"]) == (ours["acc"], ours["acc_norm"])
