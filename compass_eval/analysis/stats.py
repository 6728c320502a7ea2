"""Vectorised bootstrap: confidence intervals and paired tests for per-sample and corpus metrics.

A resample is a row of multiplicities (how often each document was drawn), so every statistic is
computed for all resamples at once: a mean is one matrix-vector product, ROC-AUC a cumulative sum
over the score-sorted documents, F1/MCC a confusion matrix per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# (weights (B, n), values (n,) or (n, 2)) -> statistic per row (B,)
_ROWS_PER_BLOCK = 64
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Bootstrap:
    """How resamples are drawn: the same seed gives the same intervals on every run."""

    iters: int = 1000
    seed: int = 1234
    level: float = 0.95
    alpha: float = 0.05


@lru_cache(maxsize=8)
def resample_weights(n: int, iters: int, seed: int) -> np.ndarray:
    """Multiplicities (iters, n) of the resamples `default_rng(seed).integers(0, n, (iters, n))`."""
    index = np.random.default_rng(seed).integers(0, n, size=(iters, n))
    weights = np.empty((iters, n))
    # Row by row, each count vector stays in cache; one flat bincount scatters over all of memory.
    for row, drawn in enumerate(index):
        weights[row] = np.bincount(drawn, minlength=n)
    weights.flags.writeable = False
    return weights


def point(statistic: Statistic, values: np.ndarray) -> float:
    """The statistic on the observed sample (every document once)."""
    return float(statistic(np.ones((1, len(values))), values)[0])


def mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of per-sample scores (acc, exact_match); every row of weights sums to n.

    `values` may also be (n, k): k logs of the same size at once, giving (B, k).
    """
    return weights @ values / len(values)


def roc_auc(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC of `[label, score]` pairs, ties counted half.

    Each positive wins against the resampled weight of negatives scored below it: a cumulative
    sum over the score-sorted negatives, read at the positive's rank among them. Weights are
    draw counts, so everything runs on small exact integers (less memory to move than floats).
    """
    positive = values[:, 0] > 0.5
    scores = values[:, 1]
    pos_index = np.flatnonzero(positive)
    neg_index = np.flatnonzero(~positive)
    neg_index = neg_index[np.argsort(scores[neg_index], kind="stable")]
    neg_scores = scores[neg_index]
    below = np.searchsorted(neg_scores, scores[pos_index], side="left")
    up_to = np.searchsorted(neg_scores, scores[pos_index], side="right")
    counts = weights.astype(np.uint16 if weights.shape[1] <= np.iinfo(np.uint16).max else np.int64)
    result = np.empty(len(weights))
    # Blocks of rows keep the temporaries in cache; np.take beats fancy indexing on columns.
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


def _confusion(weights: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row confusion matrices (B, k, k) [gold, pred] and the class values they index."""
    classes, coded = np.unique(values, return_inverse=True)
    coded = coded.reshape(values.shape)
    k = len(classes)
    cell = coded[:, 0] * k + coded[:, 1]
    onehot = np.zeros((len(values), k * k))
    onehot[np.arange(len(values)), cell] = 1.0
    return (weights @ onehot).reshape(-1, k, k), classes


def _per_class_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    gold = confusion.sum(axis=2)
    pred = confusion.sum(axis=1)
    denominator = gold + pred
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return f1, denominator > 0


def macro_f1(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sklearn's `f1_score(average="macro")` over the classes present in each resample."""
    f1, present = _per_class_f1(_confusion(weights, values)[0])
    return f1.sum(axis=1) / present.sum(axis=1)


def binary_f1(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sklearn's default `f1_score` (positive label 1), as lm-eval's `f1` aggregation uses."""
    confusion, classes = _confusion(weights, values)
    if 1.0 not in classes:
        return np.zeros(len(weights))
    f1, _ = _per_class_f1(confusion)
    return f1[:, int(np.flatnonzero(classes == 1.0)[0])]


def mcc(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Multi-class Matthews correlation, as sklearn computes it from the confusion matrix."""
    confusion = _confusion(weights, values)[0]
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


def scaled(statistic: Statistic, factor: float) -> Statistic:
    """A statistic times a constant (the JP Fin Harness reports chabsa's macro-F1 × 1.5)."""
    return lambda weights, values: factor * statistic(weights, values)


def statistic_for(metric: str, aggregation: str, pairs: bool) -> Statistic | None:
    """How lm-eval aggregated this metric, so resamples are scored the same way; None if unknown.

    `aggregation` is what the results JSON records: a registered name ("mean", "f1") or, for a
    `!function` aggregation, the function's source code, which names what it computes.
    """
    if not pairs:
        return mean
    agg = aggregation.lower()
    if metric == "roc_auc" or "roc_auc" in agg:
        return roc_auc
    if metric == "mcc" or "matthews" in agg:
        return mcc
    if "f1" in metric:
        if "2class_adjusted" in agg or "chabsa" in agg:
            return scaled(macro_f1, 1.5)  # the JP Fin Harness's chabsa score
        return macro_f1 if "macro" in agg else binary_f1
    return None


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval (numpy's linear interpolation)."""
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedTest:
    """Difference b − a on the same documents, with its bootstrap interval and two-sided p."""

    a: str
    b: str
    delta: float
    ci: tuple[float, float]
    p_value: float
    n: int
    significant: bool


def paired_test(
    a: str, b: str, observed: float, deltas: np.ndarray, n: int, settings: Bootstrap
) -> PairedTest:
    """Test whether a difference survives resampling the shared documents.

    `deltas` are b − a per resample, both phases scored on the same resampled documents, so the
    per-document correlation between phases cancels out of the noise.
    """
    deltas = deltas[np.isfinite(deltas)]
    p_value = min(1.0, 2.0 * min(np.mean(deltas <= 0.0), np.mean(deltas >= 0.0)))
    return PairedTest(
        a=a,
        b=b,
        delta=observed,
        ci=percentile_interval(deltas, settings.level),
        p_value=float(p_value),
        n=n,
        significant=bool(p_value < settings.alpha),
    )
