"""Prompt functions of the JP Fin Harness (pfnet-research/japanese-lm-fin-harness), by variant.

Each renders what the harness's `doc_to_text_*` of the same name renders for the same record.
fp2's context already lists its numbered options, so its variants show only question and
context (the harness's fp2 functions do the same); cpa_audit's 1.0-0.6 names its own instruction.
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]
CPA_INSTRUCTION = "与えられた答えの組み合わせの選択肢の中から、最適な選択肢を選んでください。"
DEFAULT_INSTRUCTION = "与えられた選択肢の中から、最適な答えを選んでください。"


def _question(doc: Doc) -> str:
    """Question and, when present, context, each ending in a newline (the 0.0-0.3 layouts)."""
    text = doc["question"] + "\n"
    if doc["context"]:
        text += doc["context"] + "\n"
    return text


def _pairs(doc: Doc) -> list[tuple[int, str]]:
    return list(zip(doc["choices"]["id"], doc["choices"]["text"], strict=True))


def _dash_list(doc: Doc, sep: str = "\n") -> str:
    return sep.join(f"- {text}" for text in doc["choices"]["text"])


# ---- default (harness doc_to_text_00)
def text_00(doc: Doc) -> str:
    lines = "".join(f"{chr(i + 65)}: {text}\n" for i, text in _pairs(doc))
    return "【問題】\n" + _question(doc) + "\n【選択肢】\n" + lines + "\n【答え】\n"


def text_00_fp2(doc: Doc) -> str:
    return "【問題】\n" + _question(doc) + "\n【答え】\n"


# ---- 1.0-0.1, 1.0-0.1.2
def text_01(doc: Doc) -> str:
    return f"[問題]:{_question(doc)}[選択肢]:[{', '.join(doc['choices']['text'])}]\n[答え]:"


def text_01_2(doc: Doc) -> str:
    labelled = ", ".join(f"{chr(i + 65)}:{text}" for i, text in _pairs(doc))
    return f"[問題]:{_question(doc)}[選択肢]:[{labelled}]\n[答え]:"


# ---- 1.0-0.2, 1.0-0.2.1
def text_02(doc: Doc) -> str:
    numbered = ",".join(f"{i}.{text}" for i, text in _pairs(doc))
    return f"質問:{_question(doc)}選択肢:{numbered}\n回答:"


def text_02_1(doc: Doc) -> str:
    return f"質問:{_question(doc)}選択肢:\n{_dash_list(doc)}\n回答:"


def text_02_1_fp2(doc: Doc) -> str:
    return f"質問:{_question(doc)}\n回答:"


# ---- 1.0-0.3 (Alpaca style)
def text_03(doc: Doc) -> str:
    body = _question(doc) + f"出力は以下から選択してください：\n{_dash_list(doc)}"
    return f"### 入力:\n{body}\n\n### 応答:\n"


def text_03_fp2(doc: Doc) -> str:
    return f"### 入力:\n{_question(doc)}\n### 応答:\n"


# ---- 1.0-0.4 / 1.0-0.5 (rinna style, <NL> or newline separators)
def _rinna(doc: Doc, sep: str, with_choices: bool) -> str:
    body = _inline(doc)
    if with_choices:
        body = f"質問：{body}{sep}選択肢：{sep}{_dash_list(doc, sep)}"
    return f"ユーザー: {body}{sep}システム: "


def _inline(doc: Doc) -> str:
    """Question with the context on the next line, nothing after (the 0.4-0.6 layouts)."""
    return doc["question"] + ("\n" + doc["context"] if doc["context"] else "")


def text_04(doc: Doc) -> str:
    return _rinna(doc, "<NL>", with_choices=True)


def text_04_fp2(doc: Doc) -> str:
    return _rinna(doc, "<NL>", with_choices=False)


def text_05(doc: Doc) -> str:
    return _rinna(doc, "\n", with_choices=True)


def text_05_fp2(doc: Doc) -> str:
    return _rinna(doc, "\n", with_choices=False)


# ---- 1.0-0.6 (Llama-2 chat style; the [INST] header is the task description)
def _llama2(doc: Doc, instruction: str, with_choices: bool) -> str:
    body = f"質問：{_inline(doc)}"
    if with_choices:
        body += f"出力は以下から選択してください：\n{_dash_list(doc)}"
    return f"{instruction}\n\n{body} [/INST] "


def text_06(doc: Doc) -> str:
    return _llama2(doc, DEFAULT_INSTRUCTION, with_choices=True)


def text_06_cpa(doc: Doc) -> str:
    return _llama2(doc, CPA_INSTRUCTION, with_choices=True)


def text_06_fp2(doc: Doc) -> str:
    return _llama2(doc, DEFAULT_INSTRUCTION, with_choices=False)


# ---- answer options and gold
def choices_letters(doc: Doc) -> list[str]:
    return [chr(65 + position) for position in range(len(doc["choices"]["id"]))]


def choices_text(doc: Doc) -> list[str]:
    return list(doc["choices"]["text"])


def choices_ids(doc: Doc) -> list[str]:
    return [str(choice_id) for choice_id in doc["choices"]["id"]]


def target_index(doc: Doc) -> int:
    return doc["choices"]["id"].index(doc["answer"])
