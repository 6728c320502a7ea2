"""Paired tests between two phases on the same documents, and multiplicity corrections.

Every test here is a null test (its p-value is uniform or conservative when nothing changed):
exact McNemar for 0/1 scores (McNemar 1947), DeLong for ROC-AUC (DeLong, DeLong &
Clarke-Pearson 1988), a paired swap (permutation) test for everything else. Resampling p-values
are (k + 1) / (B + 1), so none is ever 0. The gate's one-sided tests ask whether the candidate is
worse than the reference by *more than a margin*: for 0/1 scores Tango's (1998) score test with a
continuity correction (exact binomial at margin 0), for ROC-AUC DeLong's z, otherwise the paired
bootstrap.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, norm

from compass_eval.analysis.resampling import auc_components


def mcnemar_exact(losses: int, gains: int) -> float:
    """Two-sided exact McNemar: twice the smaller binomial tail of the discordant pairs, ≤ 1."""
    discordant = losses + gains
    if discordant == 0:
        return 1.0
    return positive_p(min(1.0, 2.0 * float(binom.cdf(min(losses, gains), discordant, 0.5))))


def drop_test_binary(losses: int, gains: int, n: int, margin: float) -> float:
    """One-sided p for "the drop (losses − gains) / n exceeds `margin`" on paired 0/1 scores.

    Margin 0: the exact binomial tail P(X ≥ losses | losses + gains, ½). Otherwise Tango's score
    statistic under the restricted maximum-likelihood estimate, continuity-corrected so that few
    discordant documents are not over-read (Tango 1998; at margin 0 it is Edwards' McNemar).
    """
    if margin <= 0.0:
        discordant = losses + gains
        return 1.0 if discordant == 0 else positive_p(float(binom.sf(losses - 1, discordant, 0.5)))
    z = tango_z(np.asarray(losses, float), np.asarray(gains, float), n, margin)
    return positive_p(float(norm.sf(z)))


def tango_z(losses: np.ndarray, gains: np.ndarray, n: int, margin: float) -> np.ndarray:
    """Tango's continuity-corrected z for H0: P(loss) − P(gain) = margin (vectorised)."""
    others = n - losses - gains
    linear = losses * (1 - margin) + gains * (1 - 3 * margin) - 2 * others * margin
    root = np.sqrt(linear**2 + 8.0 * n * gains * margin * (1 - margin))
    gain_rate = (linear + root) / (4.0 * n)  # restricted MLE of P(gain)
    variance = n * (2.0 * gain_rate + margin * (1 - margin))
    excess = losses - gains - n * margin
    corrected = np.sign(excess) * np.maximum(np.abs(excess) - 1.0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, corrected / np.sqrt(variance), 0.0)


def delong(values_a: np.ndarray, values_b: np.ndarray) -> tuple[float, float]:
    """AUC_b − AUC_a and its DeLong standard error; both logs hold `[label, score]` per document."""
    v10_a, v01_a = auc_components(values_a)
    v10_b, v01_b = auc_components(values_b)
    if len(v10_a) < 2 or len(v01_a) < 2:
        return float("nan"), float("nan")
    d10, d01 = v10_b - v10_a, v01_b - v01_a
    variance = np.var(d10, ddof=1) / len(d10) + np.var(d01, ddof=1) / len(d01)
    return float(d10.mean()), float(np.sqrt(variance))


def delong_test(values_a: np.ndarray, values_b: np.ndarray) -> float | None:
    """Two-sided DeLong p; None when the standard error is 0 with a nonzero difference."""
    delta, se = delong(values_a, values_b)
    if not np.isfinite(delta):
        return None
    if se == 0.0:
        return 1.0 if delta == 0.0 else None
    return positive_p(float(2.0 * norm.sf(abs(delta) / se)))


def swap_p_value(observed: float, null_deltas: np.ndarray) -> float:
    """Two-sided permutation p: (1 + #{|Δ*| ≥ |Δ|}) / (B + 1), a tolerance for float noise."""
    null_deltas = null_deltas[np.isfinite(null_deltas)]
    extreme = int(np.sum(np.abs(null_deltas) >= abs(observed) - 1e-12))
    return resampling_p(extreme, len(null_deltas))


def resampling_p(count: int, total: int) -> float:
    """(k + 1) / (B + 1): a resampling p-value that is never 0."""
    return float((1 + count) / (1 + total))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): family-wise error control."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (1995): false-discovery-rate control."""
    m = len(p_values)
    if not m:
        return []
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, p_values[index] * m / (rank + 1))
        adjusted[index] = running
    return adjusted.tolist()


def format_p(p: float | None, resolution: float | None = None) -> str:
    """A p-value as a reader should see it: never 0, "< 1/B" at a resampling test's resolution."""
    if p is None:
        return "undefined"
    if resolution is not None and p <= resolution * (1 + 1e-9):
        return f"< {_short(resolution * (1 + 1e-9))}"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def _short(value: float) -> str:
    return f"{value:.1g}" if value < 0.001 else f"{value:.4f}".rstrip("0")


def positive_p(p: float) -> float:
    """An exact tail can underflow to 0.0 for large n; the smallest float stands for it."""
    return max(p, np.finfo(float).tiny)
