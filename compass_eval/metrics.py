"""Corpus-level metrics for the Compass tasks, and GSM8K answer extraction.

Aggregations take the per-sample values the tasks log (`[label, probability]` for ROC-AUC,
`[gold, pred]` pairs for F1 and MCC), so the report can bootstrap the same numbers from the
sample files. A score that the data cannot define (ROC-AUC with one class) is NaN, never 0.5.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from sklearn.metrics import f1_score, matthews_corrcoef, roc_auc_score

from compass_model.answer_format import last_boxed

CHABSA_F1_SCALE = 1.5


def positive_probability(loglik_negative: float, loglik_positive: float) -> float:
    """P(positive) from the two answers' loglikelihoods, normalised over the two answers."""
    return 1.0 / (1.0 + math.exp(loglik_negative - loglik_positive))


def _columns(items: Sequence[Sequence]) -> tuple[list, list]:
    first, second = zip(*items, strict=True) if items else ((), ())
    return list(first), list(second)


def roc_auc(items: Sequence[Sequence[float]]) -> float:
    """ROC-AUC of `[label, p_positive]` items; NaN (undefined) unless both classes occur."""
    labels, probabilities = _columns(items)
    if len(set(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probabilities))


def binary_f1(items: Sequence[Sequence[int]]) -> float:
    """F1 of the positive class (1) over `[gold, pred]` pairs."""
    golds, preds = _columns(items)
    return float(f1_score(golds, preds, pos_label=1, average="binary", zero_division=0.0))


def mcc(items: Sequence[Sequence[int]]) -> float:
    golds, preds = _columns(items)
    return float(matthews_corrcoef(golds, preds))


def macro_f1(items: Sequence[Sequence[int]]) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or prediction."""
    golds, preds = _columns(items)
    return float(f1_score(golds, preds, average="macro", zero_division=0.0))


def chabsa_f1(items: Sequence[Sequence[int]]) -> float:
    """The JP Fin Harness's chabsa score: macro-F1 x 1.5.

    Only positive and negative are offered; neutral gold labels count as a third class that is
    never predicted (F1 0), and the factor 1.5 rescales the three-class mean to the two classes.
    """
    golds, preds = _columns(items)
    return float(f1_score(golds, preds, average="macro")) * CHABSA_F1_SCALE


# A generation stopped at "</Answer>" loses the closing tag: an open last block still counts.
_ANSWER_BLOCK = re.compile(r"<Answer>(.*?)(?:</Answer>|\Z)", re.DOTALL)
_NUMBER = re.compile(r"-?[$0-9.,]*[0-9]")


def boxed_answer(output: str) -> str | None:
    """The last non-empty `\\boxed{}` in the last `<Answer>` block, or None (a malformed output)."""
    blocks = _ANSWER_BLOCK.findall(output)
    boxed = last_boxed(blocks[-1]) if blocks else None
    return boxed if boxed and boxed.strip() else None


def extract_xml_answer(output: str) -> str | None:
    """The answer of a `gsm8k_cot_xml` completion: the boxed answer, else the last number."""
    boxed = boxed_answer(output)
    if boxed is not None:
        return boxed
    numbers = _NUMBER.findall(output)
    return numbers[-1] if numbers else None


def normalize_number(answer: str) -> str:
    """GSM8K-style normalisation: no `$`, commas or spaces, no trailing `.`, `.0`s dropped."""
    text = answer.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text


def gsm8k_reference(answer: str) -> str:
    """The final answer of a GSM8K reference solution (the text after `####`)."""
    return normalize_number(answer.split("####")[-1])
