"""Assembles `report.json`'s content from loaded phases: scores, trajectories, intervals, tests.

`collect_logs` is the only function here that touches files; `build_report` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from compass_eval.analysis.benchmarks import (
    BENCHMARKS,
    GROUPS,
    TASK_METRICS,
    BenchmarkScore,
    TaskScore,
    group_parts,
    score_phase,
    split_variant,
    task_chance,
)
from compass_eval.analysis.errors import InputError
from compass_eval.analysis.guard import find_mismatches
from compass_eval.analysis.results import PhaseResults
from compass_eval.analysis.samples import SampleLog, load_sample_log
from compass_eval.analysis.stats import (
    Bootstrap,
    PairedTest,
    paired_test,
    percentile_interval,
    point,
    resample_weights,
    statistic_for,
)
from compass_eval.analysis.trajectory import best_index, column_means, trajectory

# Metrics read as 0.xxx, not as percentages; a mean over a mix of these and others means nothing.
UNSCALED_METRICS = frozenset({"roc_auc", "mcc"})
# A sample log must reproduce the results JSON's score to this tolerance before it is trusted.
REPRODUCE_TOLERANCE = 1e-6
Logs = dict[tuple[str, str], SampleLog]


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report is computed from, already read from disk."""

    phases: list[PhaseResults]
    logs: Logs
    baselines: list[dict] = field(default_factory=list)
    settings: Bootstrap = Bootstrap()
    allow_mismatch: bool = False


def score_phases(phases: list[PhaseResults]) -> dict[str, dict[str, BenchmarkScore]]:
    return {p.name: score_phase(p) for p in phases}


def _parts_in_use(phase: PhaseResults, scores: dict[str, BenchmarkScore]) -> list[TaskScore]:
    """Every task score the report shows for a phase: benchmark rows and subtask rows."""
    parts = {p.task.name: p for bench in scores.values() for p in bench.parts}
    for group in GROUPS:
        parts.update({p.task.name: p for p in group_parts(group, scores, phase.tasks).values()})
    return list(parts.values())


def collect_logs(phases: list[PhaseResults], scores: dict[str, dict[str, BenchmarkScore]]) -> Logs:
    """Read the per-sample log of every task that a score was taken from, where one exists."""
    logs: Logs = {}
    for phase in phases:
        for part in _parts_in_use(phase, scores[phase.name]):
            if part.task.samples is not None:
                logs[(phase.name, part.task.name)] = load_sample_log(
                    part.task.samples,
                    part.metric,
                    part.key.partition(",")[2],
                    count_choices=task_chance(part, None) is None,
                )
    return logs


class _Resampler:
    """Bootstrap replicates per (phase, task, document set), computed once and shared by the
    phase's interval and by every paired test on the same documents."""

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

    def _statistic(self, part: TaskScore, log: SampleLog):
        aggregation = part.task.aggregations.get(part.metric, "")
        return statistic_for(part.metric, aggregation, pairs=log.values.ndim == 2)

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


def _interval(
    phase: str, bench: BenchmarkScore, resampler: _Resampler
) -> tuple[float, float] | None:
    logs = [resampler.usable(phase, part) for part in bench.parts]
    if any(log is None for log in logs):
        return None
    reps = [
        resampler.replicates(phase, p, log)[1] for p, log in zip(bench.parts, logs, strict=True)
    ]
    return percentile_interval(np.mean(reps, axis=0), resampler.settings.level)


def _paired(
    a: str, b: str, first: BenchmarkScore, second: BenchmarkScore, resampler: _Resampler
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
    _, in_a, in_b = np.intersect1d(log_a.doc_ids, log_b.doc_ids, return_indices=True)
    hash_a, hash_b = log_a.doc_hashes[in_a], log_b.doc_hashes[in_b]
    same = (hash_a == hash_b) | (hash_a == b"") | (hash_b == b"")
    keep_a = np.zeros(len(log_a), dtype=bool)
    keep_b = np.zeros(len(log_b), dtype=bool)
    keep_a[in_a[same]] = True
    keep_b[in_b[same]] = True
    return keep_a, keep_b


def _chance(phase: str, bench: BenchmarkScore, logs: Logs) -> float | None:
    chances = []
    for part in bench.parts:
        log = logs.get((phase, part.task.name))
        chances.append(task_chance(part, log.chance() if log is not None else None))
    return None if any(c is None for c in chances) else sum(chances) / len(chances)


def _entry(
    per_phase: dict[str, BenchmarkScore | None], inputs: ReportInputs, resampler: _Resampler
) -> dict:
    names = list(per_phase)
    values = [b.value if b is not None else None for b in per_phase.values()]
    path = trajectory(values)
    best = best_index(values)
    present = {p: b for p, b in per_phase.items() if b is not None}
    intervals = {p: _interval(p, b, resampler) for p, b in present.items()}
    chances = [c for p, b in present.items() if (c := _chance(p, b, inputs.logs)) is not None]
    paired = []
    for a, b in combinations(present, 2):
        test = _paired(a, b, present[a], present[b], resampler)
        if test is not None:
            paired.append(
                {
                    "a": test.a,
                    "b": test.b,
                    "delta": test.delta,
                    "ci": list(test.ci),
                    "p_value": test.p_value,
                    "n": test.n,
                    "significant": test.significant,
                }
            )
    variants = {p: b.variant for p, b in present.items() if b.variant is not None}
    return {
        "metric": next(iter(present.values())).metric,
        "scores": dict(zip(names, values, strict=True)),
        "ci": {p: list(intervals[p]) if intervals.get(p) else None for p in names}
        if any(intervals.values())
        else None,
        "best_phase": names[best] if best is not None else None,
        "forgetting": dict(zip(names, path.forgetting, strict=True)),
        "delta_vs_p0": dict(zip(names, path.delta_vs_first, strict=True)),
        "retention": dict(zip(names, path.retention, strict=True)),
        "chance": chances[0] if chances else None,
        "variant": next(iter(set(variants.values()))) if len(set(variants.values())) == 1 else None,
        "variants": variants,
        "tasks": {p: [part.task.name for part in b.parts] for p, b in present.items()},
        "complete": len(present) == len(names),
        "paired": paired,
    }


def build_report(inputs: ReportInputs) -> dict:
    """The whole analysis as plain data, in lm-eval's fraction scale."""
    names = [p.name for p in inputs.phases]
    known = {t for p in inputs.phases for t in p.tasks if split_variant(t)[0] in TASK_METRICS}
    mismatches = find_mismatches(inputs.phases, known)
    if mismatches and not inputs.allow_mismatch:
        raise InputError(
            mismatches[0].message() + " — phases are not comparable; re-evaluate with the same "
            "settings, or pass --allow-mismatch to report anyway with a warning"
        )
    scores = score_phases(inputs.phases)
    resampler = _Resampler(inputs.logs, inputs.settings)
    benchmarks = {}
    for name in BENCHMARKS:
        per_phase = {p: scores[p].get(name) for p in names}
        if any(per_phase.values()):
            benchmarks[name] = _entry(per_phase, inputs, resampler)
    subtasks: dict[str, dict[str, dict]] = {}
    for group, members in GROUPS.items():
        parts = {p.name: group_parts(group, scores[p.name], p.tasks) for p in inputs.phases}
        rows = {}
        for subtask in members:
            per_phase = {
                p: BenchmarkScore(subtask, part.metric, part.value, (part,))
                if (part := parts[p].get(subtask)) is not None
                else None
                for p in names
            }
            if any(per_phase.values()):
                rows[subtask] = _entry(per_phase, inputs, resampler)
        if rows:
            subtasks[group] = rows
    if not benchmarks and not subtasks:
        raise InputError(
            "no phase has results for a Compass benchmark or subtask ("
            + ", ".join((*BENCHMARKS, *TASK_METRICS))
            + "); check --phases and the task names in the results"
        )
    notes = _notes(names, benchmarks, inputs.logs)
    notes += sorted(set(resampler.notes))
    report = {
        "phases": names,
        "benchmarks": benchmarks,
        "subtasks": subtasks,
        "subtask_averages": {g: _average_row(names, rows) for g, rows in subtasks.items()},
        "mismatches": [m.message() for m in mismatches],
        "bootstrap": {
            "iters": inputs.settings.iters,
            "seed": inputs.settings.seed,
            "level": inputs.settings.level,
            "alpha": inputs.settings.alpha,
        },
        "external": _external(inputs.baselines, benchmarks),
        "notes": notes,
    }
    for key, field_name in (
        ("mean_forgetting", "forgetting"),
        ("mean_delta_vs_p0", "delta_vs_p0"),
        ("mean_retention", "retention"),
    ):
        complete = [list(b[field_name].values()) for b in benchmarks.values() if b["complete"]]
        report[key] = dict(zip(names, column_means(complete), strict=True)) if complete else {}
    report["analysis"] = analysis_sentences(report)
    return report


def _average_row(names: list[str], rows: dict[str, dict]) -> dict[str, float | None] | None:
    """Mean over subtasks per phase; None when ROC-AUC/MCC would be averaged with percentages."""
    scaled = {r["metric"] in UNSCALED_METRICS for r in rows.values()}
    if len(scaled) > 1:
        return None
    return dict(
        zip(names, column_means([list(r["scores"].values()) for r in rows.values()]), strict=True)
    )


def _notes(names: list[str], benchmarks: dict, logs: Logs) -> list[str]:
    notes = []
    partial = [b for b, e in benchmarks.items() if not e["complete"]]
    if partial:
        notes.append(
            "Only some phases have " + ", ".join(partial) + ": shown with gaps and left out of "
            "the means over benchmarks."
        )
    if not logs:
        notes.append(
            "No per-sample logs were found (run lm_eval with --log_samples): no confidence "
            "intervals or paired tests could be computed."
        )
    return notes


def _external(baselines: list[dict], benchmarks: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in baselines:
        if entry["benchmark"] in benchmarks:
            found.setdefault(entry["benchmark"], []).append(entry)
    return found


def find_paired(entry: dict, a: str, b: str) -> dict | None:
    """The paired test between two phases, in either stored order, oriented as b − a."""
    for test in entry["paired"]:
        if (test["a"], test["b"]) == (a, b):
            return test
        if (test["a"], test["b"]) == (b, a):
            low, high = test["ci"]
            return {**test, "a": a, "b": b, "delta": -test["delta"], "ci": [-high, -low]}
    return None


def analysis_sentences(report: dict) -> list[str]:
    """Best-phase analysis in words, anchored to the first phase."""
    names = report["phases"]
    base = names[0]
    lines = []
    for name, entry in report["benchmarks"].items():
        best = entry["best_phase"]
        text = f"{name}: peaks at {best}"
        delta = entry["delta_vs_p0"].get(best)
        if best != base and delta is not None:
            text += f", {delta:+.4f} vs {base}{_noise(entry, base, best)}"
        chance = entry["chance"]
        below = [
            p
            for p, s in entry["scores"].items()
            if s is not None and chance is not None and s < chance
        ]
        if below:
            text += f"; below chance ({chance:.4f}) in {', '.join(below)}"
        lines.append(text + ".")
    for phase in names[1:]:
        gains, losses = [], []
        for name, entry in report["benchmarks"].items():
            delta = entry["delta_vs_p0"].get(phase)
            if delta is None or delta == 0:
                continue
            (gains if delta > 0 else losses).append(
                f"{name} {delta:+.4f}{_noise(entry, base, phase)}"
            )
        lines.append(
            f"{phase} vs {base}: gained on {', '.join(gains) or 'nothing'}; "
            f"lost on {', '.join(losses) or 'nothing'}."
        )
    return lines


def _noise(entry: dict, a: str, b: str) -> str:
    test = find_paired(entry, a, b)
    if test is None:
        return " (untested)"
    return " (significant)" if test["significant"] else " (within noise)"
