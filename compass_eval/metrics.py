"""Corpus-level metrics for the Compass tasks, GSM8K answer extraction, and EDINET-Bench's
reading of a JSON reply.

Aggregations take the per-sample values the tasks log (`[label, probability]` for ROC-AUC,
`[gold, pred]` pairs for the classification metrics), so the report can bootstrap the same
numbers from the sample files. A pair whose second value is None (a generated reply that gave no
usable answer) is left out, as EDINET-Bench leaves such rows out. A score that the data cannot
define (ROC-AUC with one class) is NaN, never 0.5.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from sklearn.metrics import (
    accuracy_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

CHABSA_F1_SCALE = 1.5


def positive_probability(loglik_negative: float, loglik_positive: float) -> float:
    """P(positive) from the two answers' loglikelihoods, normalised over the two answers."""
    return 1.0 / (1.0 + math.exp(loglik_negative - loglik_positive))


def _columns(items: Sequence[Sequence]) -> tuple[list, list]:
    """Gold and prediction columns of the pairs that have a prediction."""
    scored = [item for item in items if item[1] is not None]
    first, second = zip(*scored, strict=True) if scored else ((), ())
    return list(first), list(second)


PairMetric = Callable[[Sequence[Sequence[Any]]], float]


def _over_scored_pairs(metric: Callable[[list, list], float]) -> PairMetric:
    """An aggregation over `[gold, pred]` pairs, pairs without a prediction left out; NaN when
    no pair is left."""

    @functools.wraps(metric)
    def aggregate(items: Sequence[Sequence[Any]]) -> float:
        golds, preds = _columns(items)
        return float(metric(golds, preds)) if golds else float("nan")

    return aggregate


def roc_auc(items: Sequence[Sequence[float]]) -> float:
    """ROC-AUC of `[label, p_positive]` items; NaN (undefined) unless both classes occur."""
    labels, probabilities = _columns(items)
    if len(set(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probabilities))


@_over_scored_pairs
def binary_f1(golds: list, preds: list) -> float:
    """F1 of the positive class (1)."""
    return f1_score(golds, preds, pos_label=1, average="binary", zero_division=0.0)


@_over_scored_pairs
def precision(golds: list, preds: list) -> float:
    """Precision of the positive class (1)."""
    return precision_score(golds, preds, pos_label=1, zero_division=0.0)


@_over_scored_pairs
def recall(golds: list, preds: list) -> float:
    """Recall of the positive class (1)."""
    return recall_score(golds, preds, pos_label=1, zero_division=0.0)


@_over_scored_pairs
def mcc(golds: list, preds: list) -> float:
    return matthews_corrcoef(golds, preds)


@_over_scored_pairs
def accuracy(golds: list, preds: list) -> float:
    return accuracy_score(golds, preds)


@_over_scored_pairs
def macro_f1(golds: list, preds: list) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or prediction."""
    return f1_score(golds, preds, average="macro", zero_division=0.0)


@_over_scored_pairs
def chabsa_f1(golds: list, preds: list) -> float:
    """The JP Fin Harness's chabsa score: macro-F1 x 1.5.

    Only positive and negative are offered; neutral gold labels count as a third class that is
    never predicted (F1 0), and the factor 1.5 rescales the three-class mean to the two classes.
    """
    return f1_score(golds, preds, average="macro") * CHABSA_F1_SCALE


def mean_of_scored(values: Sequence[float | None]) -> float:
    """Mean of the per-sample scores that are not None (NaN when none is)."""
    scored = [value for value in values if value is not None]
    return sum(scored) / len(scored) if scored else float("nan")


_FENCED_JSON = re.compile(r"```json(.*?)```", re.DOTALL)
_BRACED = re.compile(r"\{.*?\}", re.DOTALL)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1F\x7F]")


def extract_json_reply(reply: str) -> Any | None:
    """The JSON value of a reply as EDINET-Bench reads it (`extract_json_between_markers` in
    its src/edinet_bench/utils.py): the ```json fenced blocks, or when there are none every
    shortest `{...}`, each parsed in turn, and again without control characters; the first that
    parses wins. None when nothing parses."""
    candidates = _FENCED_JSON.findall(reply) or _BRACED.findall(reply)
    for candidate in candidates:
        candidate = candidate.strip()
        for text in (candidate, _CONTROL_CHARACTERS.sub("", candidate)):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                continue
    return None
