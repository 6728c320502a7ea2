"""Intervals and paired tests for report rows, from per-sample logs.

A row is a single task or a group; both are handled as a *choice among candidates*, each the
mean of some subtasks (a single task: one candidate of one part; the JP Fin Harness: one
candidate per prompt variant, as its leaderboard picks the best). A choice among variants gets
the winner's interval (`winner.py`), which accounts for the choice, and every swap of a paired
test repeats it. Subtasks are resampled independently (strata), phases on the same rows (pairs).
Where a textbook method fits exactly it is used: Wilson and exact McNemar for 0/1 scores, DeLong
for ROC-AUC; otherwise BCa intervals and a paired swap test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.stats import norm

from compass_eval.analysis.benchmarks import GROUPS, BenchmarkScore, TaskScore
from compass_eval.analysis.hypothesis import (
    delong,
    delong_test,
    mcnemar_exact,
    resampling_p,
    swap_p_value,
)
from compass_eval.analysis.resampling import (
    Bootstrap,
    Units,
    bca_interval,
    is_binary,
    jackknife,
    percentile_interval,
    replicates,
    stream_seed,
    swap_blocks,
    units_from_keys,
    wilson_interval,
)
from compass_eval.analysis.samples import SampleLog
from compass_eval.analysis.stats import (
    ROC_AUC,
    Statistic,
    class_codes,
    confusion_onehot,
    positive_code,
    roc_auc,
    statistic_for,
)
from compass_eval.analysis.winner import winner_interval

# A sample log must reproduce the results JSON's score to this tolerance before it is trusted.
REPRODUCE_TOLERANCE = 1e-6
Logs = dict[tuple[str, str], SampleLog]
GROUP_MEMBERS = frozenset(member for members in GROUPS.values() for member in members)


@dataclass(frozen=True)
class _Part:
    """One subtask of one candidate in one phase, restricted to the documents in use."""

    subtask: str
    statistic: Statistic
    values: np.ndarray
    units: Units
    key: tuple

    @cached_property
    def point(self) -> float:
        return self.statistic.point(self.values)


class Resampler:
    """Reads usable logs, caches replicates, and collects notes on logs that cannot be used."""

    def __init__(self, logs: Logs, settings: Bootstrap) -> None:
        self.logs = logs
        self.settings = settings
        self.cache: dict[tuple, np.ndarray] = {}
        self.notes: list[str] = []

    def usable(self, phase: str, part: TaskScore) -> SampleLog | None:
        """The part's log if its statistic is known and it reproduces the reported score."""
        log = self.logs.get((phase, part.task.name))
        if log is None:
            return None
        statistic = self.statistic(part, log)
        if statistic is None:
            self.notes.append(
                f"{phase}/{part.task.name}: no known way to resample '{part.metric}'; no interval"
            )
            return None
        recomputed = statistic.point(log.values) if len(log) else float("nan")
        both_undefined = np.isnan(recomputed) and np.isnan(part.value)
        if not (both_undefined or abs(recomputed - part.value) <= REPRODUCE_TOLERANCE):
            self.notes.append(
                f"{phase}/{part.task.name}: the sample log gives {part.metric}={recomputed:.6f} but "
                f"the results JSON says {part.value:.6f}; no interval from this log"
            )
            return None
        return log

    def statistic(self, part: TaskScore, log: SampleLog) -> Statistic | None:
        aggregation = part.task.aggregations.get(part.metric, "")
        return statistic_for(part.metric, aggregation, pairs=log.values.ndim == 2)

    def part(self, phase: str, score: TaskScore, keep: np.ndarray | None = None) -> _Part | None:
        log = self.usable(phase, score)
        if log is None or (keep is not None and len(keep) != len(log)):
            return None
        keep = np.ones(len(log), dtype=bool) if keep is None else keep
        clusters = None if log.clusters is None else log.clusters[keep]
        units = units_from_keys(clusters, int(keep.sum()))
        return _Part(
            subtask=score.subtask,
            statistic=self.statistic(score, log),
            values=log.values[keep],
            units=units,
            key=(phase, score.task.name, log.doc_ids[keep].tobytes()),
        )

    def prefetch(self, rows: list[tuple[str, TaskScore]]) -> None:
        """Replicates of whole logs, one subtask's phases after another: each stream's draws
        are made once while they are cached, instead of once per phase."""
        for phase, score in sorted(rows, key=lambda row: row[1].subtask):
            part = self.part(phase, score)
            if part is None:
                continue
            if part.subtask in GROUP_MEMBERS or not is_binary(part.statistic, part.values):
                self.replicates(part)

    def replicates(self, part: _Part) -> np.ndarray:
        if part.key not in self.cache:
            self.cache[part.key] = replicates(
                part.statistic, part.values, part.units, self.settings, part.subtask
            )
        return self.cache[part.key]


@dataclass(frozen=True)
class _Side:
    """A row's candidates in one phase: (variant, parts counted in its mean)."""

    candidates: tuple[tuple[str | None, tuple[_Part, ...]], ...]

    @property
    def single(self) -> _Part | None:
        if len(self.candidates) == 1 and len(self.candidates[0][1]) == 1:
            return self.candidates[0][1][0]
        return None

    def candidate_points(self) -> np.ndarray:
        return np.array([_mean_of(p.point for p in parts) for _, parts in self.candidates])

    def point(self) -> float:
        return float(self.candidate_points().max())

    def candidate_replicates(self, resampler: Resampler, unbiased: bool = False) -> np.ndarray:
        """(candidates, B): each candidate's mean on every resample (the same draws for all).

        `unbiased` stretches each part's replicates about its point by √(m/(m−1)) for its m
        units, so their covariance is the unbiased one, not the bootstrap's (m−1)/m of it:
        what a normal-theory interval needs at eight documents a subtask.
        """
        rows = []
        for _, parts in self.candidates:
            columns = []
            for p in parts:
                reps = resampler.replicates(p)
                if unbiased and p.units.count > 1:
                    reps = p.point + (reps - p.point) * np.sqrt(p.units.count / (p.units.count - 1))
                columns.append(reps)
            rows.append(np.mean(columns, axis=0))
        return np.array(rows)

    def replicates(self, resampler: Resampler) -> np.ndarray:
        return np.max(self.candidate_replicates(resampler), axis=0)

    def jackknife(self) -> np.ndarray:
        """Leave-one-unit-out values of a single candidate's mean, unit by unit within each of
        its subtasks (for the BCa interval's acceleration)."""
        ((_, parts),) = self.candidates
        mean = self.point()
        return np.concatenate(
            [
                mean + (jackknife(p.statistic, p.values, p.units) - p.point) / len(parts)
                for p in parts
            ]
        )


def _mean_of(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _side(phase: str, bench: BenchmarkScore, resampler: Resampler, keeps=None) -> _Side | None:
    candidates = []
    for variant, scores in bench.candidates or ((bench.variant, bench.parts),):
        parts = []
        for score in scores:
            keep = None if keeps is None else keeps.get(score.subtask)
            part = resampler.part(phase, score, keep)
            if part is None:
                return None
            parts.append(part)
        candidates.append((variant, tuple(parts)))
    return _Side(tuple(candidates))


def interval(phase: str, bench: BenchmarkScore, resampler: Resampler) -> dict | None:
    """The row's confidence interval and how it was made; None without usable logs."""
    side = _side(phase, bench, resampler)
    if side is None or bench.undefined:
        return None
    return side_interval(side, resampler)


def side_interval(side: _Side, resampler: Resampler) -> dict | None:
    """Wilson for one 0/1 score, the winner's interval for a choice among variants, BCa
    otherwise."""
    level = resampler.settings.level
    single = side.single
    if (
        single is not None
        and is_binary(single.statistic, single.values)
        and not single.units.clustered
    ):
        low, high = wilson_interval(float(single.values.sum()), len(single.values), level)
        return {"low": low, "high": high, "method": "wilson", "undefined_resamples": 0}
    if len(side.candidates) > 1:
        reps = side.candidate_replicates(resampler, unbiased=True)
        low, high = winner_interval(side.candidate_points(), reps, level)
        if not np.isfinite(low):
            return None
        undefined = int(np.sum(~np.all(np.isfinite(reps), axis=0)))
        return {"low": low, "high": high, "method": "winner", "undefined_resamples": undefined}
    reps = side.replicates(resampler)
    undefined = int(np.sum(~np.isfinite(reps)))
    low, high = bca_interval(side.point(), reps, side.jackknife(), level)
    if not np.isfinite(low):
        return None
    return {"low": low, "high": high, "method": "bca", "undefined_resamples": undefined}


def paired_difference(
    a: str, b: str, first: BenchmarkScore, second: BenchmarkScore, resampler: Resampler
) -> dict | None:
    """Test of b − a on the documents both phases scored (same doc_id and content hash).

    Returns the difference, its interval, the two-sided p and what the gate needs to test a
    drop against any margin later (discordant counts, a standard error, a one-sided p).
    """
    keeps_a, keeps_b = {}, {}
    for part_a in first.parts:
        part_b = next((p for p in second.parts if p.subtask == part_a.subtask), None)
        log_a = resampler.usable(a, part_a)
        log_b = resampler.usable(b, part_b) if part_b is not None else None
        if log_a is None or log_b is None:
            return None
        keeps_a[part_a.subtask], keeps_b[part_a.subtask] = _shared_documents(log_a, log_b)
    side_a = _side(a, first, resampler, keeps_a)
    side_b = _side(b, second, resampler, keeps_b)
    if side_a is None or side_b is None:
        return None
    n = int(sum(k.sum() for k in keeps_a.values()))
    base = {"a": a, "b": b, "n": n}
    if n == 0:
        return {**base, **_undefined("the two phases share no documents")}
    single_a, single_b = side_a.single, side_b.single
    if single_a is not None and single_b is not None and not single_a.units.clustered:
        if is_binary(single_a.statistic, single_a.values) and is_binary(
            single_b.statistic, single_b.values
        ):
            return {**base, **_binary_test(single_a.values, single_b.values, resampler.settings)}
        if single_a.statistic.kind == ROC_AUC:
            found = _delong_test(single_a.values, single_b.values, resampler.settings)
            if found is not None:
                return {**base, **found}
    return {**base, **_resampling_test(side_a, side_b, resampler)}


def _undefined(reason: str) -> dict:
    return {
        "delta": None,
        "ci": None,
        "p_value": None,
        "method": "undefined",
        "reason": reason,
    }


def _binary_test(a: np.ndarray, b: np.ndarray, settings: Bootstrap) -> dict:
    losses = int(np.sum((a == 1) & (b == 0)))
    gains = int(np.sum((a == 0) & (b == 1)))
    n = len(a)
    return {
        "delta": (gains - losses) / n,
        "ci": list(newcombe_interval(a, b, settings.level)),
        "p_value": mcnemar_exact(losses, gains),
        "method": "mcnemar_exact",
        "losses": losses,
        "gains": gains,
    }


def newcombe_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float]:
    """Newcombe's (1998, method 10) score interval for a paired difference of proportions b − a."""
    n = len(a)
    both = float(np.sum((a == 1) & (b == 1)))
    only_a = float(np.sum((a == 1) & (b == 0)))
    only_b = float(np.sum((a == 0) & (b == 1)))
    neither = n - both - only_a - only_b
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson_interval(both + only_a, n, level)
    low_b, high_b = wilson_interval(both + only_b, n, level)
    product = (both + only_a) * (neither + only_b) * (both + only_b) * (neither + only_a)
    phi = (both * neither - only_a * only_b) / np.sqrt(product) if product > 0 else 0.0
    delta = p_b - p_a
    lower = np.sqrt(
        max(
            0.0, (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2
        )
    )
    upper = np.sqrt(
        max(
            0.0, (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2
        )
    )
    return float(max(-1.0, delta - lower)), float(min(1.0, delta + upper))


def _delong_test(a: np.ndarray, b: np.ndarray, settings: Bootstrap) -> dict | None:
    labels = a[:, 0] > 0.5
    if not np.array_equal(labels, b[:, 0] > 0.5):
        return _undefined("the phases record different labels for the same documents")
    if labels.all() or not labels.any():
        return _undefined("the shared documents hold one class only: ROC-AUC is undefined")
    p_value = delong_test(a, b)
    if p_value is None:
        return None
    delta, se = delong(a, b)
    z = norm.ppf(1 - settings.alpha / 2)
    return {
        "delta": delta,
        "ci": [delta - z * se, delta + z * se],
        "p_value": p_value,
        "method": "delong",
        "se": se,
    }


def _resampling_test(side_a: _Side, side_b: _Side, resampler: Resampler) -> dict:
    """Paired swap test for p; paired bootstrap for the interval and standard error."""
    settings = resampler.settings
    observed = side_b.point() - side_a.point()
    if not np.isfinite(observed):
        return _undefined("the statistic is undefined on the shared documents (one class)")
    null = _swap_deltas(side_a, side_b, settings)
    finite_null = null[np.isfinite(null)]
    b = len(finite_null)
    boot = side_b.replicates(resampler) - side_a.replicates(resampler)
    finite = boot[np.isfinite(boot)]
    return {
        "delta": observed,
        "ci": list(percentile_interval(boot, settings.level)) if len(finite) else None,
        "p_value": swap_p_value(observed, null),
        "method": "swap_permutation",
        "se": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
        "p_drop": resampling_p(int(np.sum(finite_null <= observed + 1e-12)), b),
        "p_gain": resampling_p(int(np.sum(finite_null >= observed - 1e-12)), b),
        "resolution": 1.0 / (settings.iters + 1),
        "undefined_resamples": int(len(boot) - len(finite)),
    }


def _swap_deltas(side_a: _Side, side_b: _Side, settings: Bootstrap) -> np.ndarray:
    """b − a when each unit's two phase outcomes are swapped at random (the null: no change)."""
    variants_b = dict(side_b.candidates)
    common = [(v, parts) for v, parts in side_a.candidates if v in variants_b]
    per_a, per_b = [], []
    for variant, parts_a in common:
        by_subtask = {p.subtask: p for p in variants_b[variant]}
        swapped_a, swapped_b = [], []
        for part_a in parts_a:
            part_b = by_subtask.get(part_a.subtask)
            if part_b is None:
                continue
            xa, xb = _swapped(part_a, part_b, settings)
            swapped_a.append(xa)
            swapped_b.append(xb)
        per_a.append(np.mean(swapped_a, axis=0))
        per_b.append(np.mean(swapped_b, axis=0))
    return np.max(per_b, axis=0) - np.max(per_a, axis=0)


def _swapped(part_a: _Part, part_b: _Part, settings: Bootstrap) -> tuple[np.ndarray, np.ndarray]:
    """Phase a's and b's statistic for every swap mask: a' takes b's outcome where the mask is 1."""
    stat, units = part_a.statistic, part_a.units
    va, vb = part_a.values, part_b.values
    seed = stream_seed(settings.seed, part_a.subtask + "/swap")
    out_a, out_b = [], []
    if stat.is_mean:
        diff = (vb - va) / len(va)
        for block in swap_blocks(units.count, settings.iters, seed):
            moved = units.spread(block) @ diff
            out_a.append(stat.factor * (va.mean() + moved))
            out_b.append(stat.factor * (vb.mean() - moved))
    elif stat.uses_confusion:
        (ca, cb), k = class_codes(va, vb)
        positive = positive_code(va, vb)
        oa, ob = confusion_onehot(ca, k), confusion_onehot(cb, k)
        for block in swap_blocks(units.count, settings.iters, seed):
            moved = units.spread(block) @ (ob - oa)
            out_a.append(stat.on_confusion((oa.sum(0) + moved).reshape(-1, k, k), positive))
            out_b.append(stat.on_confusion((ob.sum(0) - moved).reshape(-1, k, k), positive))
    else:  # ROC-AUC: the scores move, so each row is sorted anew
        ones = np.ones((1, len(va)))
        for block in swap_blocks(units.count, settings.iters, seed):
            mask = units.spread(block).astype(bool)
            for row in mask:
                mixed_a = np.where(row[:, None], vb, va)
                mixed_b = np.where(row[:, None], va, vb)
                out_a.append(stat.factor * roc_auc(ones, mixed_a))
                out_b.append(stat.factor * roc_auc(ones, mixed_b))
    return np.concatenate(out_a), np.concatenate(out_b)


def _shared_documents(log_a: SampleLog, log_b: SampleLog) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the documents present in both logs with the same content hash (or no hash)."""
    if np.array_equal(log_a.doc_ids, log_b.doc_ids) and np.array_equal(
        log_a.doc_hashes, log_b.doc_hashes
    ):
        return np.ones(len(log_a), dtype=bool), np.ones(len(log_b), dtype=bool)
    _, in_a, in_b = np.intersect1d(log_a.doc_ids, log_b.doc_ids, return_indices=True)
    hash_a, hash_b = log_a.doc_hashes[in_a], log_b.doc_hashes[in_b]
    same = (hash_a == hash_b) | (hash_a == b"") | (hash_b == b"")
    keep_a = np.zeros(len(log_a), dtype=bool)
    keep_b = np.zeros(len(log_b), dtype=bool)
    keep_a[in_a[same]] = True
    keep_b[in_b[same]] = True
    return keep_a, keep_b
