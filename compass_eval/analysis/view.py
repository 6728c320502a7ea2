"""Display model of a report: formatted cells shared by the Markdown and HTML templates.

Only here do numbers change scale: ROC-AUC (and MCC) stay 0.xxx, everything else becomes a
percentage; report.json keeps lm-eval's fractions.
"""

from __future__ import annotations

from compass_eval.analysis.benchmarks import UNSCALED_METRICS as _UNSCALED
from compass_eval.analysis.hypothesis import format_p


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if metric in _UNSCALED else f"{100 * value:.2f}%"


def fmt_delta(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if metric in _UNSCALED else f"{100 * value:+.2f} pt"


def _ci(metric: str, ci: dict | None) -> str:
    return f"[{fmt(metric, ci['low'])}, {fmt(metric, ci['high'])}]" if ci else ""


def _score_row(name: str, entry: dict, phases: list[str]) -> dict:
    metric = entry["metric"]
    cells = []
    for p in phases:
        ci = (entry["ci"] or {}).get(p)
        undefined = (entry.get("undefined") or {}).get(p)
        cells.append(
            {
                "text": undefined if undefined else fmt(metric, entry["scores"].get(p)),
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
    """Every phase pair tested, in phase order, with raw and BH-adjusted p."""
    rows = []
    metric = entry["metric"]
    for test in sorted(entry["paired"], key=lambda t: (phases.index(t["a"]), phases.index(t["b"]))):
        undefined = test["p_value"] is None
        resolution = test.get("resolution")
        rows.append(
            {
                "benchmark": name,
                "pair": f"{test['a']} → {test['b']}",
                "delta": "—" if undefined else fmt_delta(metric, test["delta"]),
                "ci": f"[{fmt_delta(metric, test['ci'][0])}, {fmt_delta(metric, test['ci'][1])}]"
                if test.get("ci")
                else "",
                "p": format_p(test["p_value"], resolution),
                "p_adjusted": format_p(test.get("p_adjusted"), resolution),
                "n": test["n"],
                "method": METHOD_NAMES.get(test["method"], test["method"]),
                "label": test.get("reason", "undefined")
                if undefined
                else ("significant" if test["significant"] else "within noise"),
            }
        )
    return rows


METHOD_NAMES = {
    "mcnemar_exact": "exact McNemar",
    "delong": "DeLong",
    "swap_permutation": "paired permutation",
    "undefined": "—",
}


def _detectable_rows(benchmarks: dict) -> list[dict]:
    rows = []
    for name, entry in benchmarks.items():
        d = entry.get("detectable")
        if not d:
            continue
        drop = (
            f"{100 * d['drop']:.1f} pt"
            if d["drop"] is not None
            else f"none within {100 * d['discordance']:.0f}% discordance"
        )
        rows.append({"name": name, "n": d["n"], "drop": drop})
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
        "subtask_paired": [
            r
            for rows in report["subtasks"].values()
            for n, e in rows.items()
            for r in _paired_rows(n, e, phases)
        ],
        "detectable": _detectable_rows(benchmarks),
        "has_intervals": any(e["ci"] for e in benchmarks.values()),
        "external": external,
        "analysis": report["analysis"],
        "notes": report["notes"],
        "mismatches": report["mismatches"],
        "bootstrap": report["bootstrap"],
    }


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
