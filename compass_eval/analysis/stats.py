"""Corpus statistics computed for many resamples at once, as lm-eval's aggregations compute them.

A resample is a row of multiplicities (how often each document was drawn), so every statistic
is evaluated for a whole block of resamples at once: a mean is one matrix-vector product, ROC-AUC
a cumulative sum over the score-sorted documents, F1/MCC a confusion matrix per row. The same
confusion matrices also serve the paired swap test, where each row swaps some documents'
predictions between two phases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ROWS_PER_BLOCK = 64
MEAN, ROC_AUC, MACRO_F1, BINARY_F1, MCC = "mean", "roc_auc", "macro_f1", "binary_f1", "mcc"
_CONFUSION_KINDS = (MACRO_F1, BINARY_F1, MCC)


def mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of per-sample scores (acc, exact_match); every row of weights sums to n.

    `values` may also be (n, k): k logs of the same size at once, giving (B, k).
    """
    return weights @ values / len(values)


def roc_auc(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC of `[label, score]` pairs, ties counted half; NaN for one class.

    Each positive wins against the resampled weight of negatives scored below it: a cumulative
    sum over the score-sorted negatives, read at the positive's rank among them. Weights are
    draw counts, so everything runs on small exact integers.
    """
    positive = values[:, 0] > 0.5
    scores = values[:, 1]
    pos_index = np.flatnonzero(positive)
    neg_index = np.flatnonzero(~positive)
    neg_index = neg_index[np.argsort(scores[neg_index], kind="stable")]
    neg_scores = scores[neg_index]
    below = np.searchsorted(neg_scores, scores[pos_index], side="left")
    up_to = np.searchsorted(neg_scores, scores[pos_index], side="right")
    counts = np.asarray(weights, dtype=np.int64)
    result = np.empty(len(weights))
    for low in range(0, len(weights), _ROWS_PER_BLOCK):
        block = counts[low : low + _ROWS_PER_BLOCK]
        cumulative = np.zeros((len(block), len(neg_index) + 1), dtype=np.int64)
        np.cumsum(np.take(block, neg_index, axis=1), axis=1, out=cumulative[:, 1:])
        # twice the wins: negatives below count 2, tied ones 1 (c[below] + c[up_to])
        beaten = np.take(cumulative, below, axis=1)
        beaten += np.take(cumulative, up_to, axis=1)
        pos_counts = np.take(block, pos_index, axis=1)
        wins = np.einsum("bp,bp->b", pos_counts, beaten, dtype=np.int64)
        pairs = pos_counts.sum(axis=1, dtype=np.int64) * cumulative[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            result[low : low + len(block)] = np.where(pairs > 0, wins / (2.0 * pairs), np.nan)
    return result


def class_codes(*value_sets: np.ndarray) -> tuple[list[np.ndarray], int]:
    """[gold, pred] pairs coded as class indices jointly over several logs (phases), and k."""
    classes = np.unique(np.concatenate([v.ravel() for v in value_sets]))
    return [np.searchsorted(classes, v) for v in value_sets], len(classes)


def confusion_onehot(coded: np.ndarray, k: int) -> np.ndarray:
    """(n, k*k) indicator of each document's [gold, pred] cell: weights @ it is a confusion."""
    onehot = np.zeros((len(coded), k * k))
    onehot[np.arange(len(coded)), coded[:, 0] * k + coded[:, 1]] = 1.0
    return onehot


def from_confusion(kind: str, confusion: np.ndarray, positive: int | None) -> np.ndarray:
    """Macro-F1, binary F1 (class `positive`) or MCC of (B, k, k) [gold, pred] matrices."""
    if kind == MCC:
        return _mcc(confusion)
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    denominator = confusion.sum(axis=2) + confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    if kind == MACRO_F1:
        # sklearn's macro average: over the classes present in gold or predictions
        return f1.sum(axis=1) / np.maximum((denominator > 0).sum(axis=1), 1)
    return np.zeros(len(confusion)) if positive is None else f1[:, positive]


def _mcc(confusion: np.ndarray) -> np.ndarray:
    gold = confusion.sum(axis=2)
    pred = confusion.sum(axis=1)
    correct = np.trace(confusion, axis1=1, axis2=2)
    total = confusion.sum(axis=(1, 2))
    cov_gp = correct * total - np.einsum("bk,bk->b", gold, pred)
    cov_pp = total**2 - np.einsum("bk,bk->b", pred, pred)
    cov_gg = total**2 - np.einsum("bk,bk->b", gold, gold)
    denominator = np.sqrt(cov_pp * cov_gg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, cov_gp / denominator, 0.0)


@dataclass(frozen=True)
class Statistic:
    """How lm-eval aggregated a metric: its kind and a constant factor (chabsa's macro-F1 × 1.5)."""

    kind: str
    factor: float = 1.0

    @property
    def is_mean(self) -> bool:
        return self.kind == MEAN

    @property
    def uses_confusion(self) -> bool:
        return self.kind in _CONFUSION_KINDS

    def __call__(self, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The statistic for each row of weights (B, n)."""
        if self.kind == MEAN:
            result = mean(weights, values)
        elif self.kind == ROC_AUC:
            result = roc_auc(weights, values)
        else:
            (coded,), k = class_codes(values)
            confusion = (weights @ confusion_onehot(coded, k)).reshape(-1, k, k)
            result = from_confusion(self.kind, confusion, positive_code(values))
        return self.factor * result

    def on_confusion(self, confusion: np.ndarray, positive: int | None) -> np.ndarray:
        return self.factor * from_confusion(self.kind, confusion, positive)

    def point(self, values: np.ndarray) -> float:
        """The statistic on the observed sample (every document once)."""
        return float(self(np.ones((1, len(values))), values)[0])


def positive_code(*value_sets: np.ndarray) -> int | None:
    """Index of class 1 among the jointly coded classes (binary F1's positive label), if present."""
    classes = np.unique(np.concatenate([v.ravel() for v in value_sets]))
    found = np.flatnonzero(classes == 1.0)
    return int(found[0]) if len(found) else None


def statistic_for(metric: str, aggregation: str, pairs: bool) -> Statistic | None:
    """How lm-eval aggregated this metric, so resamples are scored the same way; None if unknown.

    `aggregation` is what the results JSON records: a registered name ("mean", "f1") or, for a
    `!function` aggregation, the function's source code, which names what it computes.
    """
    if not pairs:
        return Statistic(MEAN)
    agg = aggregation.lower()
    if metric == "roc_auc" or "roc_auc" in agg:
        return Statistic(ROC_AUC)
    if metric == "mcc" or "matthews" in agg:
        return Statistic(MCC)
    if "f1" in metric:
        if "2class_adjusted" in agg or "chabsa" in agg:
            return Statistic(MACRO_F1, 1.5)  # the JP Fin Harness's chabsa score
        return Statistic(MACRO_F1 if "macro" in agg else BINARY_F1)
    return None
