"""JP Fin Harness tasks through lm-eval's task manager: real counts, prompts as the harness renders.

The expected prompts are transcribed here from the harness's published task definitions
(pfnet-research/japanese-lm-fin-harness: jlm_fin_eval/tasks/<task>/utils.py and the task configs
recorded in its leaderboard result files), applied to records read from the raw files the way the
harness's dataset builders read them.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from clitools import REPO, SHARED_DATA

EXAMS = ("cma_basics", "cpa_audit", "fp2", "security_sales_1")
VARIANTS = ("default", "1.0-0.1", "1.0-0.1.2", "1.0-0.2", "1.0-0.2.1") + tuple(
    f"1.0-0.{n}" for n in (3, 4, 5, 6)
)
LLAMA2 = (
    "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant. Always answer as "
    "helpfully as possible, while being safe. Your answers should not include any harmful, "
    "unethical, racist, sexist, toxic, dangerous, or illegal content. Please ensure that your "
    "responses are socially unbiased and positive in nature.\n\nIf a question does not make any "
    "sense, or is not factually coherent, explain why instead of answering something not correct."
    " If you don't know the answer to a question, please don't share false information.\n"
    "<</SYS>>\n\n\n"
)
ALPACA = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を"
    "書きなさい。\n\n### 指示:\n"
)
# description per variant: (cma_basics / fp2 / security_sales_1, cpa_audit)
DESCRIPTIONS = {
    "default": (
        "以下の問題の適切な答えを選択肢から選んでアルファベットで答えなさい。\n\n\n",
        "以下の問題の答えとして適切な記号の組み合わせを選択肢から選んでアルファベットで答えなさい。\n\n\n",
    ),
    "1.0-0.1": (
        "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n\n",
        "[問題]に対する[答え]をとして適切な記号の組み合わせを[選択肢]の中から選んでください。\n\n\n",
    ),
    "1.0-0.1.2": (
        "[問題]に対する[答え]を[選択肢]の中からアルファベットで選んでください。\n\n\n",
        "[問題]に対する[答え]として適切な記号の組み合わせを[選択肢]の中からアルファベットで選んでください。\n\n\n",
    ),
    "1.0-0.2": (
        "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)でするものとします。\n\n\n",
        "質問とその答えとして適切な記号の組み合わせの選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)でするものとします。\n\n\n",
    ),
    "1.0-0.2.1": (
        "与えられた選択肢の中から、最適な答えを選んでください。\n\n\n",
        "与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。\n\n\n",
    ),
    "1.0-0.3": (
        ALPACA + "与えられた選択肢の中から、最適な答えを選んでください。\n\n\n",
        ALPACA + "与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。\n\n\n",
    ),
    "1.0-0.4": (
        "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。<NL>システム: 分かりました。<NL>",
        "ユーザー: 与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。<NL>システム: 分かりました。<NL>",
    ),
    "1.0-0.5": (
        "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。\nシステム: 分かりました。\n\n",
        "ユーザー: 与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。\nシステム: 分かりました。\n\n",
    ),
    "1.0-0.6": (LLAMA2, LLAMA2),
}
FP2_DEFAULT = "以下の問題の適切な答えを選択肢から選んで１～４の数字で答えなさい。\n\n\n"


# ---- the harness's doc_to_text functions, transcribed
def h00(doc, with_choices=True):
    doc_text = "【問題】\n" + doc["question"] + "\n"
    if doc["context"] and doc["context"] != "":
        doc_text += doc["context"] + "\n"
    if with_choices:
        doc_text += "\n【選択肢】\n"
        for choice_id, choice_text in zip(
            doc["choices"]["id"], doc["choices"]["text"], strict=True
        ):
            doc_text += chr(choice_id + 65) + ": " + choice_text + "\n"
    doc_text += "\n【答え】\n"
    return doc_text


def _q(doc):
    q_doc_text = doc["question"] + "\n"
    if doc["context"] and doc["context"] != "":
        q_doc_text += doc["context"] + "\n"
    return q_doc_text


def h01(doc):
    return f"[問題]:{_q(doc)}[選択肢]:[{', '.join(doc['choices']['text'])}]\n[答え]:"


def h01_2(doc):
    parts = [
        chr(i + 65) + ":" + t
        for i, t in zip(doc["choices"]["id"], doc["choices"]["text"], strict=True)
    ]
    return f"[問題]:{_q(doc)}[選択肢]:[{', '.join(parts)}]\n[答え]:"


def h02(doc):
    choices = ",".join(
        f"{i}.{c}" for i, c in zip(doc["choices"]["id"], doc["choices"]["text"], strict=True)
    )
    return f"質問:{_q(doc)}選択肢:{choices}\n回答:"


def h02_1(doc, with_choices=True):
    if not with_choices:
        return f"質問:{_q(doc)}\n回答:"
    choices = "\n".join([f"- {choice}" for choice in doc["choices"]["text"]])
    return f"質問:{_q(doc)}選択肢:\n{choices}\n回答:"


def h03(doc, with_choices=True):
    if not with_choices:
        return f"### 入力:\n{_q(doc)}\n### 応答:\n"
    choices = "\n".join([f"- {choice}" for choice in doc["choices"]["text"]])
    input_text = f"{_q(doc)}" + f"出力は以下から選択してください：\n{choices}"
    return f"### 入力:\n{input_text}\n\n### 応答:\n"


def h04(doc, SEP="<NL>", with_choices=True):  # noqa: N803 - the harness's own parameter name
    q_doc_text = doc["question"]
    if doc["context"] and doc["context"] != "":
        q_doc_text += "\n" + doc["context"]
    if not with_choices:
        return f"ユーザー: {q_doc_text}{SEP}システム: "
    choices = SEP.join([f"- {choice}" for choice in doc["choices"]["text"]])
    input_text = f"質問：{q_doc_text}{SEP}" + f"選択肢：{SEP}{choices}"
    return f"ユーザー: {input_text}{SEP}システム: "


def h06(doc, instruction, with_choices=True):
    q_doc_text = doc["question"]
    if doc["context"] and doc["context"] != "":
        q_doc_text += "\n" + doc["context"]
    input_text = f"質問：{q_doc_text}"
    if with_choices:
        choices = "\n".join([f"- {choice}" for choice in doc["choices"]["text"]])
        input_text += f"出力は以下から選択してください：\n{choices}"
    return f"{instruction}\n\n{input_text} [/INST] "


def harness_prompt(task, variant, doc):
    """(context, choices, gold choice) as the harness builds them for this record."""
    full = task != "fp2"
    cpa = task == "cpa_audit"
    description = DESCRIPTIONS[variant][1 if cpa else 0]
    instruction = (
        "与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。"
        if cpa
        else "与えられた選択肢の中から、最適な答えを選んでください。"
    )
    text = {
        "default": lambda d: h00(d, full),
        "1.0-0.1": h01,
        "1.0-0.1.2": h01_2,
        "1.0-0.2": h02,
        "1.0-0.2.1": lambda d: h02_1(d, full),
        "1.0-0.3": lambda d: h03(d, full),
        "1.0-0.4": lambda d: h04(d, "<NL>", full),
        "1.0-0.5": lambda d: h04(d, "\n", full),
        "1.0-0.6": lambda d: h06(d, instruction, full),
    }[variant](doc)
    letters = [chr(i + 65) for i in doc["choices"]["id"]]
    ids = [str(i) for i in doc["choices"]["id"]]
    choices = {"default": letters, "1.0-0.1.2": letters, "1.0-0.2": ids}.get(
        variant, list(doc["choices"]["text"])
    )
    if task == "fp2" and variant == "default":
        description, choices = FP2_DEFAULT, list(doc["choices"]["text"])
    return description + text, choices, choices[doc["choices"]["id"].index(doc["answer"])]


def raw_records(task):
    """Records as the harness's dataset builders yield them (choices as a Sequence feature)."""
    folder = SHARED_DATA / "jp_fin_harness"
    if task != "cpa_audit":
        rows = json.loads((folder / f"{task}.json").read_text(encoding="utf-8"))["data"]
        for row in rows:
            row["choices"] = {
                "id": [c["id"] for c in row["choices"]],
                "text": [c["text"] for c in row["choices"]],
            }
        return rows
    df = pd.read_excel(folder / "CPA_AUDIT.xlsx", index_col=0, dtype=object)

    def as_str(value):  # datasets' Value("string") stores str(value): NaN becomes "nan"
        return "nan" if isinstance(value, float) and math.isnan(value) else str(value)

    rows = []
    for row in df.to_dict(orient="records"):
        if as_str(row["question"]) in ("", "nan") or row["abnormal_flg"] == 1:
            continue
        marks = [m for m in "アイウエオカ" if as_str(row[m]) not in ("", "nan")]
        rows.append(
            {
                "question": as_str(row["question"]),
                "context": "\n".join(f"{m}: {as_str(row[m])}" for m in marks),
                "choices": {"id": list(range(6)), "text": [as_str(row[i + 1]) for i in range(6)]},
                "answer": row["a_no"] - 1,
            }
        )
    return rows


def _name(task, variant):
    return task if variant == "default" else f"{task}-{variant}"


@pytest.fixture(scope="module")
def loaded(monkeypatch_module):
    from lm_eval.tasks import TaskManager

    names = [_name(t, v) for t in EXAMS for v in VARIANTS]
    # Our folder only (the start-up hook adds it): indexing lm-eval's own tasks takes seconds.
    return TaskManager(include_defaults=False).load(names)["tasks"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPASS_DATA_DIR", str(SHARED_DATA))
        yield patch


def test_real_data_counts_through_the_task_manager(loaded):
    counts = {task: len(loaded[task].eval_docs) for task in EXAMS}
    assert counts == {"cma_basics": 38, "cpa_audit": 398, "fp2": 475, "security_sales_1": 57}


@pytest.mark.parametrize("task", EXAMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_first_and_last_document_render_as_in_the_harness(loaded, task, variant):
    lm_task = loaded[_name(task, variant)]
    docs, raws = lm_task.eval_docs, raw_records(task)
    assert len(docs) == len(raws)
    for position in (0, len(docs) - 1):
        doc = docs[position]
        context, choices, gold = harness_prompt(task, variant, raws[position])
        assert lm_task.fewshot_context(doc, 0) == context
        assert lm_task.doc_to_choice(doc) == choices
        assert lm_task.doc_to_choice(doc)[lm_task.doc_to_target(doc)] == gold
        assert lm_task.config.target_delimiter == ""


def test_literal_renderings_of_known_documents(loaded):
    cma = loaded["cma_basics"]
    assert cma.fewshot_context(cma.eval_docs[0], 0) == (
        "以下の問題の適切な答えを選択肢から選んでアルファベットで答えなさい。\n\n\n"
        "【問題】\n日本経済に関する次の記述のうち、正しくないものはどれか。\n\n【選択肢】\n"
        "A: 実質GDP（実質国内総生産）とは、物価変動の影響を除いた生産活動の水準のことである。\n"
        "B: インフレーションは一般物価水準の持続的な上昇を意味する。\n"
        "C: 銀行等の金融仲介機関が中心になって資金の融通を媒介する形態を間接金融という。\n"
        "D: 日本銀行による財政政策はマネーサプライの増減を通じて物価水準を調整する政策である。\n"
        "\n【答え】\n"
    )
    sales = loaded["security_sales_1-1.0-0.2"]
    assert sales.fewshot_context(sales.eval_docs[0], 0) == (
        "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は"
        "選択肢の番号(例:0)でするものとします。\n\n\n"
        "質問:次の文章について、正しければ○と、正しくなければ×と答えよ。\n"
        "外務員は、その所属する金融商品取引業者等に代わって、有価証券の売買等法律に規定する行為"
        "に関し、一切の裁判上の行為を行う権限を有するものとみなされる。\n選択肢:0.○,1.×\n回答:"
    )
    assert sales.doc_to_target(sales.eval_docs[0]) == 1
    cpa = loaded["cpa_audit"]
    first = cpa.eval_docs[0]
    assert cpa.doc_to_choice(first) == ["A", "B", "C", "D", "E", "F"]
    assert "\nF: ウエ\n\n【答え】\n" in cpa.fewshot_context(first, 0)


def test_cpa_keeps_the_harness_nan_for_an_empty_sixth_choice(loaded):
    texts = [doc["choices"]["text"][5] for doc in loaded["cpa_audit"].eval_docs]
    assert texts.count("nan") == 38  # 40 in the file, 2 of them flagged abnormal


def test_generated_yamls_match_the_variant_table():
    import importlib.util

    path = REPO / "tasks/jp_fin_harness/_generate_configs.py"
    spec = importlib.util.spec_from_file_location("generate_configs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.configs()
    assert len(expected) == 4 * 9 + 7 + 9 + 1  # + jp_fin_harness_leaderboard
    for name, content in expected.items():
        assert (path.parent / name).read_text(encoding="utf-8") == content, name
