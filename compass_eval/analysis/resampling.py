"""Resampling and intervals: bootstrap draws, swap masks, jackknife, BCa, percentile and Wilson.

Draws are made per *stream* (a subtask's name): the same stream gives the same rows in every
phase and prompt variant, so two phases resampled on the same documents are paired, while two
subtasks of a group are resampled independently. Where documents come in clusters (one company's
reports, one file's opinions) the clusters are drawn, and every document of a cluster takes its
cluster's count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import norm

from compass_eval.analysis.stats import MEAN, ROC_AUC, Statistic

_BLOCK = 1024  # rows per block: a (1024, n) float matrix stays small even for n = 10,000


@dataclass(frozen=True)
class Bootstrap:
    """Resampling settings; one confidence level drives intervals and significance (α = 1 − level)."""

    iters: int = 10_000
    seed: int = 1234
    level: float = 0.95

    @property
    def alpha(self) -> float:
        return round(1.0 - self.level, 12)


@dataclass(frozen=True)
class Units:
    """What is resampled: each document (`index` None) or clusters, `index[i]` = doc i's cluster."""

    n_docs: int
    index: np.ndarray | None = None

    @property
    def count(self) -> int:
        return self.n_docs if self.index is None else int(self.index.max()) + 1

    @property
    def clustered(self) -> bool:
        return self.index is not None and self.count < self.n_docs

    def spread(self, block: np.ndarray) -> np.ndarray:
        """Per-unit rows (B, units) as per-document rows (B, n_docs)."""
        return block if self.index is None else block[:, self.index]


def units_from_keys(keys: np.ndarray | None, n_docs: int) -> Units:
    """Cluster index from each document's cluster key (None: every document its own unit)."""
    if keys is None:
        return Units(n_docs)
    _, index = np.unique(keys, return_inverse=True)
    return Units(len(keys), index)


def stream_seed(seed: int, stream: str) -> int:
    """A seed per stream: independent draws for different subtasks, identical across phases."""
    digest = hashlib.sha256(f"{seed}\0{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@lru_cache(maxsize=2)
def resample_counts(n: int, iters: int, seed: int) -> np.ndarray:
    """Multiplicities (iters, n) of the resamples `default_rng(seed).integers(0, n, (iters, n))`.

    Drawn block by block from one generator (the same numbers as one big draw), counted with a
    single offset bincount per block, kept as uint16 to hold 10,000 × 10,000 in 200 MB.
    """
    rng = np.random.default_rng(seed)
    counts = np.empty((iters, n), dtype=np.uint16)
    for low in range(0, iters, _BLOCK):
        rows = min(_BLOCK, iters - low)
        drawn = rng.integers(0, n, size=(rows, n))
        drawn += (np.arange(rows) * n)[:, None]
        counts[low : low + rows] = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n)
    counts.flags.writeable = False
    return counts


@lru_cache(maxsize=16)
def _packed_swaps(n: int, iters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(iters, (n + 7) // 8), dtype=np.uint8)
    packed.flags.writeable = False
    return packed


def swap_blocks(n: int, iters: int, seed: int):
    """Yield (B_block, n) float 0/1 masks: 1 where a unit's two phases swap, each with p = ½."""
    packed = _packed_swaps(n, iters, seed)
    for low in range(0, iters, _BLOCK):
        bits = np.unpackbits(packed[low : low + _BLOCK], axis=1, count=n)
        yield bits.astype(np.float64)


def replicates(
    statistic: Statistic, values: np.ndarray, units: Units, settings: Bootstrap, stream: str
) -> np.ndarray:
    """The statistic on `settings.iters` bootstrap resamples of the units (NaN where undefined)."""
    counts = resample_counts(units.count, settings.iters, stream_seed(settings.seed, stream))
    out = np.empty(settings.iters)
    for low in range(0, settings.iters, _BLOCK):
        block = units.spread(counts[low : low + _BLOCK]).astype(np.float64)
        out[low : low + len(block)] = statistic(block, values)
    return out


def jackknife(statistic: Statistic, values: np.ndarray, units: Units) -> np.ndarray:
    """Leave-one-unit-out values of the statistic (for BCa's acceleration)."""
    n = len(values)
    if statistic.is_mean and values.ndim == 1:
        if units.index is None:
            return statistic.factor * (values.sum() - values) / max(n - 1, 1)
        totals = np.bincount(units.index, weights=values, minlength=units.count)
        sizes = np.bincount(units.index, minlength=units.count)
        with np.errstate(invalid="ignore", divide="ignore"):
            return statistic.factor * (values.sum() - totals) / (n - sizes)
    if statistic.kind == ROC_AUC and units.index is None:
        return _auc_jackknife(values) * statistic.factor
    if units.index is None:
        # one evaluation per distinct document value (few for [gold, pred] pairs)
        _, first, inverse = np.unique(values, axis=0, return_index=True, return_inverse=True)
        weights = np.ones((len(first), n))
        weights[np.arange(len(first)), first] = 0.0
        return statistic(weights, values)[inverse.ravel()]
    out = np.empty(units.count)
    for low in range(0, units.count, 256):
        ids = np.arange(low, min(low + 256, units.count))
        weights = (units.index[None, :] != ids[:, None]).astype(np.float64)
        out[low : low + len(ids)] = statistic(weights, values)
    return out


def auc_components(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: each positive's and each negative's share of wins."""
    positive = values[:, 0] > 0.5
    pos, neg = values[positive, 1], np.sort(values[~positive, 1])
    below = np.searchsorted(neg, pos, side="left")
    up_to = np.searchsorted(neg, pos, side="right")
    v10 = (below + up_to) / (2.0 * len(neg)) if len(neg) else np.full(len(pos), np.nan)
    pos_sorted = np.sort(pos)
    neg_vals = values[~positive, 1]
    above = len(pos) - np.searchsorted(pos_sorted, neg_vals, side="right")
    tied = np.searchsorted(pos_sorted, neg_vals, side="right") - np.searchsorted(
        pos_sorted, neg_vals, side="left"
    )
    v01 = (above + 0.5 * tied) / len(pos) if len(pos) else np.full(len(neg_vals), np.nan)
    return v10, v01


def _auc_jackknife(values: np.ndarray) -> np.ndarray:
    positive = values[:, 0] > 0.5
    v10, v01 = auc_components(values)
    m, k = len(v10), len(v01)
    auc = v10.mean() if m and k else np.nan
    out = np.empty(len(values))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[positive] = (m * auc - v10) / (m - 1)
        out[~positive] = (k * auc - v01) / (k - 1)
    return out


def percentile_interval(reps: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval (numpy's linear interpolation), undefined resamples left out."""
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(reps, [tail, 100.0 - tail])
    return float(low), float(high)


def bca_interval(
    observed: float, reps: np.ndarray, jack: np.ndarray, level: float
) -> tuple[float, float]:
    """Efron's bias-corrected and accelerated interval (Efron 1987).

    Bias from the share of resamples below the observed value (ties count half), acceleration
    from the jackknife's skewness; undefined resamples and jackknife values are left out.
    """
    reps = reps[np.isfinite(reps)]
    jack = jack[np.isfinite(jack)]
    if not len(reps):
        return float("nan"), float("nan")
    if np.all(reps == reps[0]):
        return float(reps[0]), float(reps[0])
    b = len(reps)
    below = (np.sum(reps < observed) + 0.5 * np.sum(reps == observed)) / b
    z0 = norm.ppf(np.clip(below, 1.0 / (b + 1), b / (b + 1)))
    spread = jack.mean() - jack
    denominator = 6.0 * np.sum(spread**2) ** 1.5
    accel = float(np.sum(spread**3) / denominator) if denominator > 0 else 0.0
    tail = (1.0 - level) / 2.0
    quantiles = []
    for z in (norm.ppf(tail), norm.ppf(1.0 - tail)):
        adjusted = norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
        quantiles.append(100.0 * float(np.clip(adjusted, 0.0, 1.0)))
    low, high = np.percentile(reps, quantiles)
    return float(low), float(high)


def wilson_interval(successes: float, n: int, level: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion (Wilson 1927): sound at n = 38 and at 0 or n."""
    if n <= 0:
        return float("nan"), float("nan")
    z = norm.ppf(1.0 - (1.0 - level) / 2.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def is_binary(statistic: Statistic, values: np.ndarray) -> bool:
    """A mean of 0/1 scores: intervals and tests for proportions apply exactly."""
    return (
        statistic.kind == MEAN and values.ndim == 1 and bool(np.all((values == 0) | (values == 1)))
    )
