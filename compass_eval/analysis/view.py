"""Display model of a report: formatted cells shared by the Markdown and HTML templates.

Only here do numbers change scale: ROC-AUC (and MCC) stay 0.xxx, everything else becomes a
percentage; report.json keeps lm-eval's fractions.
"""

from __future__ import annotations

from compass_eval.analysis.benchmarks import UNSCALED_METRICS as _UNSCALED


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if metric in _UNSCALED else f"{100 * value:.2f}%"


def fmt_delta(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if metric in _UNSCALED else f"{100 * value:+.2f} pt"


def _ci(metric: str, ci: list[float] | None) -> str:
    return f"[{fmt(metric, ci[0])}, {fmt(metric, ci[1])}]" if ci else ""


def _score_row(name: str, entry: dict, phases: list[str]) -> dict:
    metric = entry["metric"]
    cells = []
    for p in phases:
        ci = (entry["ci"] or {}).get(p)
        cells.append(
            {
                "text": fmt(metric, entry["scores"].get(p)),
                "ci": _ci(metric, ci),
                "best": p == entry["best_phase"],
            }
        )
    variants = entry.get("variants") or {}
    return {
        "name": name,
        "metric": metric,
        "cells": cells,
        "chance": fmt(metric, entry["chance"]),
        "variant": ", ".join(f"{p}: {v}" for p, v in variants.items()),
        "complete": entry["complete"],
    }


def _paired_rows(name: str, entry: dict, phases: list[str]) -> list[dict]:
    """Consecutive phases and each phase against the first: the comparisons a reader asks for."""
    wanted = [(phases[k - 1], phases[k]) for k in range(1, len(phases))]
    wanted += [(phases[0], p) for p in phases[2:]]
    by_pair = {(t["a"], t["b"]): t for t in entry["paired"]}
    rows = []
    for a, b in wanted:
        test = by_pair.get((a, b))
        if test is None:
            continue
        metric = entry["metric"]
        rows.append(
            {
                "benchmark": name,
                "pair": f"{a} → {b}",
                "delta": fmt_delta(metric, test["delta"]),
                "ci": f"[{fmt_delta(metric, test['ci'][0])}, {fmt_delta(metric, test['ci'][1])}]",
                "p": f"{test['p_value']:.3f}",
                "n": test["n"],
                "label": "significant" if test["significant"] else "within noise",
            }
        )
    return rows


def build_view(report: dict) -> dict:
    phases = report["phases"]
    benchmarks = report["benchmarks"]
    subtask_tables = {}
    for group, rows in report["subtasks"].items():
        averages = report["subtask_averages"][group]
        subtask_tables[group] = {
            "rows": [_score_row(name, entry, phases) for name, entry in rows.items()],
            "average": [fmt("mean", averages.get(p)) for p in phases] if averages else None,
        }
    trajectory_rows = []
    for name, entry in benchmarks.items():
        metric = entry["metric"]
        trajectory_rows.append(
            {
                "name": name,
                "cells": [
                    {
                        "forgetting": fmt_delta(metric, entry["forgetting"].get(p)),
                        "delta": fmt_delta(metric, entry["delta_vs_p0"].get(p)),
                        "retention": _ratio(entry["retention"].get(p)),
                    }
                    for p in phases
                ],
            }
        )
    means = {
        "forgetting": [fmt_delta("mean", report["mean_forgetting"].get(p)) for p in phases],
        "delta": [fmt_delta("mean", report["mean_delta_vs_p0"].get(p)) for p in phases],
        "retention": [_ratio(report["mean_retention"].get(p)) for p in phases],
    }
    external = [
        {**b, "score_text": fmt(b["metric"], b["score"])}
        for entries in report["external"].values()
        for b in entries
    ]
    return {
        "phases": phases,
        "first": phases[0],
        "benchmarks": [_score_row(n, e, phases) for n, e in benchmarks.items()],
        "subtask_tables": subtask_tables,
        "trajectory": trajectory_rows,
        "means": means,
        "paired": [r for n, e in benchmarks.items() for r in _paired_rows(n, e, phases)],
        "has_intervals": any(e["ci"] for e in benchmarks.values()),
        "external": external,
        "analysis": report["analysis"],
        "notes": report["notes"],
        "mismatches": report["mismatches"],
        "bootstrap": report["bootstrap"],
    }


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
