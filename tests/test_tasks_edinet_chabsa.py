"""chABSA and EDINET-Bench tasks on synthetic fixtures in their exact schemas (tests/fixtures)."""

from __future__ import annotations

import pytest
from clitools import REPO

from compass_eval.data.edinet import INDUSTRIES, TRUNCATION_MARK

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


def test_edinet_truncation_keeps_instruction_question_and_answer_cue(fixture_root):
    task = _load(["edinet_fraud"], max_report_chars=1200)["edinet_fraud"]
    context = task.fewshot_context(task.eval_docs[0], 0)
    assert context.startswith("Please analyze the following information extracted from a Japanese")
    assert context.endswith(
        "\n\nQuestion: Does this securities report show signs of fraud? Answer Yes or No.\nAnswer:"
    )
    report = task.eval_docs[0]["report"]
    lines = report.split("\n")
    assert [line.split(":")[0] for line in lines] == ["summary", "bs", "pl", "cf"]
    assert all(len(line) <= len("summary: ") + 300 + len(TRUNCATION_MARK) for line in lines)
    assert report.count(TRUNCATION_MARK) == 3  # cf is short enough to stay whole
    metadata = task.config.metadata
    assert metadata["max_report_chars"] == 1200
    assert metadata["sheets"] == ["summary", "bs", "pl", "cf"]
    assert metadata["truncation"].startswith("per-sheet head")
    untruncated = _load(["edinet_fraud"])["edinet_fraud"]
    assert TRUNCATION_MARK not in untruncated.eval_docs[0]["report"]
    assert untruncated.config.metadata["data_fingerprint"] != metadata["data_fingerprint"]


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


def test_industry_is_a_16_way_choice_over_the_edinet_bench_labels():
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPASS_DATA_DIR", "demo")
        task = TaskManager(include_defaults=False).load(["edinet_industry"])["tasks"][
            "edinet_industry"
        ]
    doc = task.eval_docs[0]
    assert task.doc_to_choice(doc) == list(INDUSTRIES) and len(INDUSTRIES) == 16
    assert task.doc_to_target(doc) == INDUSTRIES.index("食品")
    assert "Choose one of: 食品, 電気・ガス・エネルギー資源," in task.fewshot_context(doc, 0)
