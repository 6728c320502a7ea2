"""Assembles `report.json`'s content from loaded phases: scores, trajectories, intervals, tests,
the phases' run settings and provenance, and the documents that flipped between phases.

`collect_logs` reads the sample logs; `build_report` reads nothing but the results files'
headers and the checkpoints' manifests (see `run_settings`, `provenance`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations, pairwise

from compass_eval.analysis.benchmarks import (
    BENCHMARKS,
    GROUPS,
    TASK_ALIASES,
    TASK_METRICS,
    BenchmarkScore,
    TaskScore,
    group_parts,
    score_phase,
    split_variant,
    task_chance,
)
from compass_eval.analysis.flips import flipped
from compass_eval.analysis.gate import GateResult
from compass_eval.analysis.guard import find_mismatches
from compass_eval.analysis.hypothesis import benjamini_hochberg
from compass_eval.analysis.intervals import Logs, Resampler, interval, paired_difference
from compass_eval.analysis.narrative import analysis_sections
from compass_eval.analysis.power import DISCORDANCE, POWER, minimum_detectable_drop
from compass_eval.analysis.provenance import read_provenance
from compass_eval.analysis.resampling import Bootstrap
from compass_eval.analysis.results import PhaseResults
from compass_eval.analysis.run_settings import phase_settings
from compass_eval.analysis.samples import load_sample_log
from compass_eval.analysis.trajectory import column_means, peak, trajectory
from compass_eval.analysis.units import family
from compass_model.errors import CompassInputError


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
    """Every task score the report resamples for a phase: benchmark rows (every competing
    prompt variant of a group) and subtask rows."""
    parts = {
        p.task.name: p
        for bench in scores.values()
        for _, candidate in bench.candidates or ((None, bench.parts),)
        for p in (*bench.parts, *candidate)
    }
    for group in GROUPS:
        parts.update({p.task.name: p for p in group_parts(group, scores, phase.tasks).values()})
    return list(parts.values())


def collect_logs(phases: list[PhaseResults], scores: dict[str, dict[str, BenchmarkScore]]) -> Logs:
    """Read the per-sample log of every task that a score was taken from, where one exists.

    Answer choices (for a chance level the config does not give) are the data's, the same in
    every phase, so they are counted in the first log of each subtask only.
    """
    logs: Logs = {}
    counted: set[str] = set()
    for phase in phases:
        for part in _parts_in_use(phase, scores[phase.name]):
            if part.task.samples is not None:
                count = task_chance(part, None) is None and part.subtask not in counted
                cluster_key = part.task.metadata.get("cluster_key")
                logs[(phase.name, part.task.name)] = load_sample_log(
                    part.task.samples,
                    part.metric,
                    part.key.partition(",")[2],
                    count,
                    None if cluster_key is None else str(cluster_key),
                )
                counted.update([part.subtask] if count else [])
    return logs


def _chance(phase: str, bench: BenchmarkScore, logs: Logs) -> float | None:
    chances = []
    for part in bench.parts:
        log = logs.get((phase, part.task.name))
        chances.append(task_chance(part, log.chance() if log is not None else None))
    return None if any(c is None for c in chances) else sum(chances) / len(chances)


def _documents(phase: str, bench: BenchmarkScore, logs: Logs) -> dict | None:
    """How many documents (and clusters) a phase's row stands on, from its sample logs."""
    found = [logs.get((phase, part.task.name)) for part in bench.parts]
    if any(log is None for log in found):
        counts = [part.task.n_samples for part in bench.parts]
        if any(c is None for c in counts):
            return None
        return {"documents": sum(counts), "clusters": None, "undefined": 0}
    clusters = [len(set(log.clusters.tolist())) for log in found if log.clusters is not None]
    return {
        "documents": sum(len(log) for log in found),
        "clusters": sum(clusters) if len(clusters) == len(found) else None,
        "undefined": sum(log.undefined for log in found),
    }


def _detectable(metric: str, documents: dict | None, alpha: float) -> dict | None:
    """Minimum detectable paired difference at 80% power for a 0/1 metric of this size."""
    if documents is None or metric not in ("acc", "exact_match", "acc_norm"):
        return None
    n = documents["documents"]
    return {
        "drop": minimum_detectable_drop(n, alpha),
        "n": n,
        "power": POWER,
        "discordance": DISCORDANCE,
        "alpha": alpha,
    }


def _entry(
    per_phase: dict[str, BenchmarkScore | None], inputs: ReportInputs, resampler: Resampler
) -> dict:
    names = list(per_phase)
    present = {p: b for p, b in per_phase.items() if b is not None}
    undefined = {p: _undefined_reason(b) for p, b in present.items() if b.undefined}
    defined = {p: b for p, b in present.items() if not b.undefined}
    values = [None if (b is None or b.undefined) else b.value for b in per_phase.values()]
    path = trajectory(values)
    top = peak(values)
    intervals = {p: interval(p, b, resampler) for p, b in defined.items()}
    chances = [c for p, b in present.items() if (c := _chance(p, b, inputs.logs)) is not None]
    paired = []
    for a, b in combinations(present, 2):
        test = paired_difference(a, b, present[a], present[b], resampler)
        if test is not None:
            paired.append(test)
    variants = {p: b.variant for p, b in present.items() if b.variant is not None}
    documents = {p: _documents(p, b, inputs.logs) for p, b in present.items()}
    sizes = [d for d in documents.values() if d is not None]
    metric = next(iter(present.values())).metric
    return {
        "metric": metric,
        "scores": dict(zip(names, values, strict=True)),
        "undefined": undefined,
        "ci": {p: intervals.get(p) for p in names} if any(intervals.values()) else None,
        "best_phase": names[top.best] if top.best is not None else None,
        "tied_best": [names[k] for k in top.tied],
        "forgetting": dict(zip(names, path.forgetting, strict=True)),
        "delta_vs_p0": dict(zip(names, path.delta_vs_first, strict=True)),
        "retention": dict(zip(names, path.retention, strict=True)),
        "chance": chances[0] if chances else None,
        "variant": next(iter(set(variants.values()))) if len(set(variants.values())) == 1 else None,
        "variants": variants,
        "zero_left_out": {p: list(b.zero_left_out) for p, b in present.items() if b.zero_left_out},
        "tasks": {p: [part.task.name for part in b.parts] for p, b in present.items()},
        "documents": documents,
        "detectable": _detectable(
            metric,
            max(sizes, key=lambda d: d["documents"]) if sizes else None,
            inputs.settings.alpha,
        ),
        "complete": len(defined) == len(names),
        "paired": paired,
    }


def _undefined_reason(bench: BenchmarkScore) -> str:
    if bench.metric == "roc_auc":
        return "undefined (one class only)"
    return "undefined (NaN in the results)"


def _adjust_for_multiplicity(entries: list[dict], alpha: float) -> None:
    """Benjamini–Hochberg over every paired test of the report; labels use the adjusted p."""
    unique = list({id(e): e for e in entries}.values())
    tests = [t for e in unique for t in e["paired"] if t["p_value"] is not None]
    for test, adjusted in zip(
        tests, benjamini_hochberg([t["p_value"] for t in tests]), strict=True
    ):
        test["p_adjusted"] = adjusted
        test["significant"] = bool(adjusted <= alpha)
    for e in unique:
        for t in e["paired"]:
            if t["p_value"] is None:
                t["p_adjusted"], t["significant"] = None, False


def build_report(inputs: ReportInputs) -> dict:
    """The whole analysis as plain data, in lm-eval's fraction scale."""
    names = [p.name for p in inputs.phases]
    known = {
        t
        for p in inputs.phases
        for t in p.tasks
        if split_variant(t)[0] in TASK_METRICS or t in TASK_ALIASES
    }
    mismatches = find_mismatches(inputs.phases, known)
    if mismatches and not inputs.allow_mismatch:
        raise CompassInputError(
            mismatches[0].message() + " — phases are not comparable; re-evaluate with the same "
            "settings, or pass --allow-mismatch to report anyway with a warning"
        )
    scores = score_phases(inputs.phases)
    resampler = Resampler(inputs.logs, inputs.settings)
    resampler.prefetch(
        [(p.name, part) for p in inputs.phases for part in _parts_in_use(p, scores[p.name])]
    )
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
            tasks = {p: [b.parts[0].task.name] for p, b in per_phase.items() if b is not None}
            if subtask in benchmarks and benchmarks[subtask]["tasks"] == tasks:
                rows[subtask] = benchmarks[subtask]  # the same row, tested once
            elif tasks:
                rows[subtask] = _entry(per_phase, inputs, resampler)
        if rows:
            subtasks[group] = rows
    _adjust_for_multiplicity(
        [*benchmarks.values(), *(r for rows in subtasks.values() for r in rows.values())],
        inputs.settings.alpha,
    )
    if not benchmarks and not subtasks:
        raise CompassInputError(
            "no phase has results for a Compass benchmark or subtask ("
            + ", ".join((*BENCHMARKS, *TASK_METRICS))
            + "); check --phases and the task names in the results"
        )
    notes = _notes(benchmarks, inputs.logs)
    notes += sorted(set(resampler.notes))
    every_row = {**benchmarks, **{n: e for group in subtasks.values() for n, e in group.items()}}
    settings = _run_settings(inputs.phases, every_row)
    report = {
        "phases": names,
        "benchmarks": benchmarks,
        "subtasks": subtasks,
        "subtask_averages": {g: _average_row(names, rows) for g, rows in subtasks.items()},
        "run_settings": settings,
        "provenance": {p: read_provenance(s["run"].get("checkpoint")) for p, s in settings.items()},
        "flips": _flips(names, every_row, inputs.logs),
        "gate": None,
        "mismatches": [m.message() for m in mismatches],
        "bootstrap": {
            "iters": inputs.settings.iters,
            "seed": inputs.settings.seed,
            "level": inputs.settings.level,
            "alpha": inputs.settings.alpha,
            "multiplicity": "Benjamini-Hochberg over all paired tests of the report (FDR)",
        },
        "external": _external(inputs.baselines, benchmarks),
        "notes": notes,
    }
    report["means"] = _means(names, benchmarks)
    report["analysis"] = [
        f"{section['heading']}: {point}"
        for section in analysis_sections(report)
        for point in section["points"]
    ]
    return report


def _means(names: list[str], benchmarks: dict) -> dict[str, dict]:
    """Forgetting, Δ and retention averaged per unit family (accuracy points are never averaged
    with ROC-AUC differences), over the benchmarks every phase has."""
    members: dict[str, list[str]] = {}
    for name, entry in benchmarks.items():
        if entry["complete"]:
            members.setdefault(family(entry["metric"]), []).append(name)
    return {
        unit: {
            "benchmarks": rows,
            **{
                key: dict(
                    zip(
                        names,
                        column_means([list(benchmarks[b][key].values()) for b in rows]),
                        strict=True,
                    )
                )
                for key in ("forgetting", "delta_vs_p0", "retention")
            },
        }
        for unit, rows in members.items()
    }


def _run_settings(phases: list[PhaseResults], rows: dict[str, dict]) -> dict[str, dict]:
    """Each phase's settings for the tasks the report's rows were computed from."""
    used = {t for entry in rows.values() for tasks in entry["tasks"].values() for t in tasks}
    return {p.name: phase_settings(p, sorted(used & set(p.tasks))) for p in phases}


def _flips(names: list[str], rows: dict[str, dict], logs: Logs) -> list[dict]:
    """For each pair of consecutive phases, the single-task rows whose documents changed answer."""
    found = []
    for a, b in pairwise(names):
        changed = []
        for name, entry in rows.items():
            tasks_a, tasks_b = entry["tasks"].get(a, []), entry["tasks"].get(b, [])
            if len(tasks_a) != 1 or len(tasks_b) != 1:
                continue  # a group: its subtasks have rows of their own
            log_a, log_b = logs.get((a, tasks_a[0])), logs.get((b, tasks_b[0]))
            if log_a is None or log_b is None:
                continue
            flips = flipped(log_a, log_b, entry["metric"])
            if flips["lost"] or flips["gained"]:
                changed.append({"benchmark": name, "metric": entry["metric"], **flips})
        found.append({"a": a, "b": b, "rows": changed})
    return found


def gate_summary(result: GateResult, policy: str) -> dict:
    """The gate's verdict as report.json keeps it (thresholds and drops in lm-eval's scale)."""
    return {
        "policy": policy,
        "candidate": result.candidate,
        "alpha": result.alpha,
        "failed": result.failed,
        "rows": [{**asdict(row), "failed": row.failed} for row in result.rows],
        "warnings": result.warnings,
    }


def _average_row(names: list[str], rows: dict[str, dict]) -> dict[str, float | None] | None:
    """Mean over subtasks per phase; None when ROC-AUC/MCC would be averaged with percentages."""
    if len({family(r["metric"]) for r in rows.values()}) > 1:
        return None
    return dict(
        zip(names, column_means([list(r["scores"].values()) for r in rows.values()]), strict=True)
    )


def _notes(benchmarks: dict, logs: Logs) -> list[str]:
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
    for name, entry in benchmarks.items():
        for phase, left_out in entry.get("zero_left_out", {}).items():
            notes.append(
                f"{name} in {phase}: {', '.join(left_out)} scored exactly 0 and "
                f"{'is' if len(left_out) == 1 else 'are'} left out of the mean, as the JP Fin "
                "Harness leaderboard (make_leaderboard.py) averages."
            )
    return notes


def _external(baselines: list[dict], benchmarks: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in baselines:
        if entry["benchmark"] in benchmarks:
            found.setdefault(entry["benchmark"], []).append(entry)
    return found
