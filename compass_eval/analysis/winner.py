"""Interval for the leaderboard's chosen prompt variant: inference on a winner.

The JP Fin Harness leaderboard reports the variant with the best score, a number biased upwards
by the choice (the winner's curse). The interval here is for the chosen variant's true score and,
with the variants' scores jointly normal, holds it with the stated confidence whatever their true
scores are, tied or far apart: given that it won, the chosen score is a truncated normal whose
truncation points depend only on statistics independent of it (Andrews, Kitagawa & McCloskey
2024, "Inference on Winners"); `benchmarks/gate_calibration.py` measures it on 0/1 data. The
conditional interval is hybridised with the simultaneous (projection) interval at level 1 − β,
β = α/10: it lies inside that one, where the conditional interval alone grows very long after a
near tie, and still covers 1 − α. The variants' covariance comes from the bootstrap replicates,
drawn on the same rows for every variant.

Scores that are means of 0/1 values lie on a lattice and tie exactly; the choice is then read as
"no other variant more than half a lattice step ahead", the continuity correction that keeps the
conditional interval defined (a winner that ties would otherwise sit on its truncation point).
A maximum over variants has no interval that is exact in every configuration; the chosen
variant's own score does, which is why that is the quantity this interval is for.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

# Lattice steps below this are floating-point noise, not a lattice.
_NOISE = 1e-12


def winner_interval(points: np.ndarray, reps: np.ndarray, level: float) -> tuple[float, float]:
    """Hybrid interval for the true score of the candidate with the best point (first on ties).

    `points`: each candidate's observed score; `reps`: (candidates, B) bootstrap replicates,
    the same draws for all candidates (resamples undefined for any candidate are left out).
    """
    reps = reps[:, np.all(np.isfinite(reps), axis=0)]
    chosen = int(np.argmax(points))
    x = float(points[chosen])
    if reps.shape[1] < 2:
        return float("nan"), float("nan")
    cov = np.atleast_2d(np.cov(reps))
    variance = float(cov[chosen, chosen])
    if variance <= 0:
        return x, x
    sd = np.sqrt(variance)
    low_cut, high_cut = _truncation(points, reps, cov, chosen)
    alpha = 1.0 - level
    beta = alpha / 10.0
    c = _projection_critical_value(points, reps, np.sqrt(np.diag(cov)), 1.0 - beta)
    hybrid_alpha = (alpha - beta) / (1.0 - beta)

    def conditional_cdf(mu: float) -> float:
        """P(chosen score ≤ x | it won, the other statistics, |score − μ| ≤ c·sd)."""
        below = ndtr((max(low_cut, mu - c * sd) - mu) / sd)  # standardised cuts lie in ±c
        mass = ndtr((min(high_cut, mu + c * sd) - mu) / sd) - below
        if mass <= 0:
            return 0.5  # both cuts at x: no evidence either way
        return float(np.clip((ndtr((x - mu) / sd) - below) / mass, 0.0, 1.0))

    start, stop = x - c * sd, x + c * sd

    def solve(target: float) -> float:
        """The μ where the (decreasing) conditional CDF meets `target`, within the projection."""
        if conditional_cdf(start) <= target:
            return start
        if conditional_cdf(stop) >= target:
            return stop
        return float(brentq(lambda mu: conditional_cdf(mu) - target, start, stop, xtol=1e-10))

    return solve(1.0 - hybrid_alpha / 2.0), solve(hybrid_alpha / 2.0)


def _truncation(
    points: np.ndarray, reps: np.ndarray, cov: np.ndarray, chosen: int
) -> tuple[float, float]:
    """Where the chosen score may lie, given the others' parts independent of it, for it to win.

    With ρ_j = cov(j, chosen) / var(chosen) and Z_j = x_j − ρ_j·x (independent of x), winning by
    at least minus half a lattice step h_j means (1 − ρ_j)·x ≥ Z_j − h_j/2.
    """
    x = points[chosen]
    low, high = -np.inf, np.inf
    for j in range(len(points)):
        if j == chosen:
            continue
        rho = cov[j, chosen] / cov[chosen, chosen]
        slack = 1.0 - rho
        if abs(slack) < 1e-9:
            continue  # moves with the chosen score: no constraint on it
        bound = (points[j] - rho * x - _lattice_step(reps[chosen] - reps[j]) / 2.0) / slack
        if slack > 0:
            low = max(low, bound)
        else:
            high = min(high, bound)
    return float(low), float(high)


def _lattice_step(differences: np.ndarray) -> float:
    """The smallest nonzero gap between resampled differences: their lattice step (≈ 0 if none)."""
    gaps = np.diff(np.unique(np.round(differences, 12)))
    gaps = gaps[gaps > _NOISE]
    return float(gaps.min()) if len(gaps) else 0.0


def _projection_critical_value(
    points: np.ndarray, reps: np.ndarray, sds: np.ndarray, quantile: float
) -> float:
    """Quantile of max_j |x*_j − x_j| / sd_j over the resamples: a simultaneous band's width."""
    spread = sds > 0
    deviations = np.abs(reps[spread] - points[spread, None]) / sds[spread, None]
    return float(np.quantile(deviations.max(axis=0), quantile))
