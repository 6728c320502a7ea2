"""What a benchmark of n documents can detect: exact power of the paired 0/1 tests Compass runs.

The design assumption: with no real change a share `discordance` of the documents (default 20%)
is still answered differently by two phases, half each way (training churn); a real drop δ adds
δ of losses on top (a share ψ/2 + δ lost, ψ/2 gained). Power is summed exactly over the number of
discordant documents and how they split, for the very test that is run: two-sided exact McNemar
in the report, the gate's one-sided test against its margin at its corrected level.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.stats import binom, norm

from compass_eval.analysis.hypothesis import tango_z

DISCORDANCE = 0.2
POWER = 0.8


@lru_cache(maxsize=64)
def _first_rejected(n: int, alpha: float, margin: float, two_sided: bool) -> np.ndarray:
    """For each number of discordant documents D = 0…n, the fewest losses the test rejects at
    (n + 1 means never). Two-sided tests are symmetric, so losses ≤ D − that also reject."""
    discordant = np.arange(n + 1)
    if two_sided or margin <= 0.0:
        tail = alpha / 2 if two_sided else alpha
        # smallest k with P(X ≥ k | D, ½) ≤ tail; isf gives the largest k' with sf(k') > tail
        first = binom.isf(tail, discordant, 0.5) + 1
        first = np.where(binom.sf(first - 1, discordant, 0.5) <= tail, first, first + 1)
    else:
        # Tango's z grows with the losses at fixed D: bisect every D at once
        low, high = np.zeros(n + 1), discordant + 1.0
        for _ in range(int(np.ceil(np.log2(n + 2))) + 1):
            middle = np.floor((low + high) / 2)
            losses = np.minimum(middle, discordant)
            z = tango_z(losses, discordant - losses, n, margin)
            rejects = norm.sf(z) <= alpha
            high = np.where(rejects, middle, high)
            low = np.where(rejects, low, middle + 1)
        first = high
    first = np.where(first > discordant, n + 1, first)
    return first.astype(float)


def paired_power(
    n: int,
    delta: float,
    alpha: float,
    discordance: float = DISCORDANCE,
    margin: float = 0.0,
    two_sided: bool = True,
) -> float:
    """Probability that the test rejects when the candidate truly loses δ more than it gains."""
    discordant = np.arange(n + 1)
    churn = discordance / 2.0
    rate = min(1.0, discordance + delta)
    share = (churn + delta) / rate
    first = _first_rejected(n, alpha, margin, two_sided)
    given = binom.sf(first - 1, discordant, share)
    if two_sided:
        mirrored = discordant - first  # losses at or below it reject in the other direction
        given = given + np.where(mirrored >= 0, binom.cdf(mirrored, discordant, share), 0.0)
    return float(np.sum(binom.pmf(discordant, n, rate) * np.minimum(given, 1.0)))


def minimum_detectable_drop(
    n: int,
    alpha: float,
    power: float = POWER,
    discordance: float = DISCORDANCE,
    margin: float = 0.0,
    two_sided: bool = True,
) -> float | None:
    """Smallest δ (to 0.001) the test detects with `power`; None if no δ ≤ 1 − ψ is enough."""
    most = 1.0 - discordance
    if n < 1 or paired_power(n, most, alpha, discordance, margin, two_sided) < power:
        return None
    low, high = 0.0, most
    while high - low > 5e-4:
        middle = (low + high) / 2
        if paired_power(n, middle, alpha, discordance, margin, two_sided) >= power:
            high = middle
        else:
            low = middle
    return round(high, 3)
