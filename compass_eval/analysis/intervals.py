"""Bootstrap intervals and paired tests for report rows, from per-sample logs.

Replicates are computed once per (phase, task, document set) and shared by the phase's interval
and by every paired test over the same documents.
"""

from __future__ import annotations

import numpy as np

from compass_eval.analysis.benchmarks import BenchmarkScore, TaskScore
from compass_eval.analysis.samples import SampleLog
from compass_eval.analysis.stats import (
    Bootstrap,
    PairedTest,
    Statistic,
    mean,
    paired_test,
    percentile_interval,
    point,
    resample_weights,
    statistic_for,
)

# A sample log must reproduce the results JSON's score to this tolerance before it is trusted.
REPRODUCE_TOLERANCE = 1e-6
Logs = dict[tuple[str, str], SampleLog]


class Resampler:
    """Caches replicates and collects notes on logs that cannot be used."""

    def __init__(self, logs: Logs, settings: Bootstrap) -> None:
        self.logs = logs
        self.settings = settings
        self.cache: dict[tuple, tuple[float, np.ndarray]] = {}
        self.notes: list[str] = []

    def usable(self, phase: str, part: TaskScore) -> SampleLog | None:
        """The part's log if its statistic is known and it reproduces the reported score."""
        log = self.logs.get((phase, part.task.name))
        if log is None:
            return None
        statistic = self._statistic(part, log)
        if statistic is None:
            self.notes.append(
                f"{phase}/{part.task.name}: no known way to resample '{part.metric}'; no interval"
            )
            return None
        recomputed = point(statistic, log.values)
        if not abs(recomputed - part.value) <= REPRODUCE_TOLERANCE:
            self.notes.append(
                f"{phase}/{part.task.name}: the sample log gives {part.metric}={recomputed:.6f} but "
                f"the results JSON says {part.value:.6f}; no interval from this log"
            )
            return None
        return log

    def _statistic(self, part: TaskScore, log: SampleLog) -> Statistic | None:
        aggregation = part.task.aggregations.get(part.metric, "")
        return statistic_for(part.metric, aggregation, pairs=log.values.ndim == 2)

    def prefetch_means(self, rows: list[tuple[str, TaskScore]]) -> None:
        """Replicates of every per-sample mean over full logs, one matrix product per log size.

        Stacking the logs as columns reads each weight matrix once instead of once per log.
        """
        by_size: dict[int, list[tuple[tuple, np.ndarray]]] = {}
        for phase, part in rows:
            log = self.usable(phase, part)
            if log is not None and self._statistic(part, log) is mean:
                key = (phase, part.task.name, log.doc_ids.tobytes())
                by_size.setdefault(len(log), []).append((key, log.values))
        for n, columns in by_size.items():
            stacked = np.column_stack([values for _, values in columns])
            s = self.settings
            replicates = mean(resample_weights(n, s.iters, s.seed), stacked)
            for k, (key, values) in enumerate(columns):
                self.cache[key] = (point(mean, values), replicates[:, k])

    def replicates(
        self, phase: str, part: TaskScore, log: SampleLog, keep: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Observed statistic and its bootstrap replicates on the kept documents."""
        values = log.values if keep is None else log.values[keep]
        ids = log.doc_ids if keep is None else log.doc_ids[keep]
        key = (phase, part.task.name, ids.tobytes())
        if key not in self.cache:
            statistic = self._statistic(part, log)
            s = self.settings
            weights = resample_weights(len(values), s.iters, s.seed)
            self.cache[key] = (point(statistic, values), statistic(weights, values))
        return self.cache[key]


def interval(phase: str, bench: BenchmarkScore, resampler: Resampler) -> tuple[float, float] | None:
    """Percentile interval of a row; a group's replicates are the mean of its subtasks'."""
    logs = [resampler.usable(phase, part) for part in bench.parts]
    if any(log is None for log in logs):
        return None
    reps = [
        resampler.replicates(phase, p, log)[1] for p, log in zip(bench.parts, logs, strict=True)
    ]
    return percentile_interval(np.mean(reps, axis=0), resampler.settings.level)


def paired_difference(
    a: str, b: str, first: BenchmarkScore, second: BenchmarkScore, resampler: Resampler
) -> PairedTest | None:
    """Paired bootstrap of b − a over the documents both phases scored (same doc_id and hash)."""
    second_parts = {p.subtask: p for p in second.parts}
    observed, deltas, n = [], [], 0
    for part_a in first.parts:
        part_b = second_parts.get(part_a.subtask)
        log_a = resampler.usable(a, part_a)
        log_b = resampler.usable(b, part_b) if part_b is not None else None
        if log_a is None or log_b is None:
            return None
        keep_a, keep_b = _shared_documents(log_a, log_b)
        if not keep_a.any():
            return None
        point_a, reps_a = resampler.replicates(a, part_a, log_a, keep_a)
        point_b, reps_b = resampler.replicates(b, part_b, log_b, keep_b)
        observed.append(point_b - point_a)
        deltas.append(reps_b - reps_a)
        n += int(keep_a.sum())
    return paired_test(
        a, b, float(np.mean(observed)), np.mean(deltas, axis=0), n, resampler.settings
    )


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
