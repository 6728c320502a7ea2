"""Display model of a report: formatted cells shared by the Markdown and HTML templates.

Numbers change scale only through `units` (ROC-AUC and MCC 0.xxx, everything else %);
report.json keeps lm-eval's fractions.
"""

from __future__ import annotations

from urllib.parse import urlparse

from compass_eval.analysis.hypothesis import format_p
from compass_eval.analysis.narrative import analysis_sections, find_paired
from compass_eval.analysis.run_settings import PER_PHASE, differing
from compass_eval.analysis.units import FAMILY_LABELS, fmt, fmt_delta, fmt_drop, fmt_family_delta

GAIN, LOSS = "▲", "▼"
TASK_SETTINGS = ("n-shot", "task version", "data fingerprint", "documents")
METHOD_NAMES = {
    "mcnemar_exact": "exact McNemar",
    "delong": "DeLong",
    "swap_permutation": "paired permutation",
    "undefined": "—",
}


def significance_mark(entry: dict, first: str, phase: str) -> tuple[str, str]:
    """▲/▼ when the paired test against the first phase is significant after BH; its tooltip."""
    if phase == first:
        return "", ""
    test = find_paired(entry, first, phase)
    if test is None or test["p_value"] is None or not test["significant"]:
        return "", ""
    p = format_p(test["p_adjusted"], test.get("resolution"))
    title = f"{fmt_delta(entry['metric'], test['delta'])} vs {first}, BH-adjusted p {p}"
    return (GAIN if test["delta"] > 0 else LOSS), title


def _ci(metric: str, ci: dict | None) -> str:
    return f"[{fmt(metric, ci['low'])}, {fmt(metric, ci['high'])}]" if ci else ""


def _documents(entry: dict, phases: list[str]) -> str:
    """n per benchmark: one figure when every phase scored the same documents, else per phase."""

    def one(d: dict | None) -> str:
        if d is None:
            return "—"
        clusters = f" ({d['clusters']} clusters)" if d.get("clusters") is not None else ""
        return f"{d['documents']}{clusters}"

    shown = {p: one(d) for p, d in (entry.get("documents") or {}).items()}
    if not shown:
        return "—"
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return " · ".join(f"{p} {shown[p]}" for p in phases if p in shown)


def _score_row(name: str, entry: dict, phases: list[str]) -> dict:
    metric = entry["metric"]
    cells = []
    for p in phases:
        undefined = (entry.get("undefined") or {}).get(p)
        mark, title = significance_mark(entry, phases[0], p)
        cells.append(
            {
                "text": undefined if undefined else fmt(metric, entry["scores"].get(p)),
                "ci": _ci(metric, (entry["ci"] or {}).get(p)),
                "best": p == entry["best_phase"],
                "tied": p in (entry.get("tied_best") or []),
                "mark": mark,
                "mark_title": title,
            }
        )
    variants = entry.get("variants") or {}
    return {
        "name": name,
        "metric": metric,
        "n": _documents(entry, phases),
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
                "significant": bool(test.get("significant")),
                "label": test.get("reason", "undefined")
                if undefined
                else ("significant" if test["significant"] else "within noise"),
            }
        )
    return rows


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


def _trajectory_rows(benchmarks: dict, phases: list[str]) -> list[dict]:
    rows = []
    for name, entry in benchmarks.items():
        metric = entry["metric"]
        rows.append(
            {
                "name": name,
                "cells": [
                    {
                        "forgetting": fmt_delta(metric, entry["forgetting"].get(p)),
                        "delta": fmt_delta(metric, entry["delta_vs_p0"].get(p)),
                        "mark": significance_mark(entry, phases[0], p)[0],
                        "retention": _ratio(entry["retention"].get(p)),
                    }
                    for p in phases
                ],
            }
        )
    return rows


def _means(report: dict, phases: list[str]) -> list[dict]:
    """One mean row per unit family, naming the benchmarks it averages."""
    rows = []
    for unit, means in report["means"].items():
        rows.append(
            {
                "label": f"Mean ({FAMILY_LABELS[unit]}: {', '.join(means['benchmarks'])})",
                "cells": [
                    {
                        "forgetting": fmt_family_delta(unit, means["forgetting"].get(p)),
                        "delta": fmt_family_delta(unit, means["delta_vs_p0"].get(p)),
                        "retention": _ratio(means["retention"].get(p)),
                    }
                    for p in phases
                ],
            }
        )
    return rows


def _settings(report: dict, phases: list[str]) -> dict:
    """Run-level rows (one value per phase) and per-task cells; differing settings flagged."""
    per_phase = report["run_settings"]
    keys = list(dict.fromkeys(k for p in phases for k in per_phase[p]["run"]))
    run_rows = []
    for key in keys:
        values = {p: per_phase[p]["run"].get(key) for p in phases}
        run_rows.append(
            {
                "setting": key,
                "by_phase": [values[p] or "—" for p in phases],
                "differs": key not in PER_PHASE and differing(values),
            }
        )
    tasks = list(dict.fromkeys(t for p in phases for t in per_phase[p]["tasks"]))
    task_rows = []
    for task in tasks:
        cells = []
        for setting in TASK_SETTINGS:
            values = {
                p: per_phase[p]["tasks"][task].get(setting)
                for p in phases
                if task in per_phase[p]["tasks"]
            }
            present = {v for v in values.values() if v is not None}
            text = (
                "; ".join(f"{p}: {v or '—'}" for p, v in values.items())
                if len(present) > 1
                else (next(iter(present)) if present else "—")
            )
            cells.append({"text": text, "differs": differing(values)})
        task_rows.append({"task": task, "cells": cells})
    return {
        "run": run_rows,
        "task_settings": TASK_SETTINGS,
        "tasks": task_rows,
        "any_differs": any(r["differs"] for r in run_rows)
        or any(c["differs"] for r in task_rows for c in r["cells"]),
    }


def _provenance(report: dict, phases: list[str]) -> list[dict]:
    rows = []
    for phase in phases:
        found = report["provenance"].get(phase)
        if not found:
            continue
        stages = "; ".join(
            f"{s['name']}: {s['steps']} steps"
            + (f", final loss {s['final_loss']:.4g}" if isinstance(s["final_loss"], float) else "")
            + (f", {s['adapter']}" if s.get("adapter") else "")
            for s in found["stages"]
        )
        rows.append(
            {
                "phase": phase,
                "parent": found["parent"] or "—",
                "recipe": found["recipe"] or "—",
                "digest": found["recipe_digest"],
                "stages": stages or "—",
                "loss_plots": [
                    {"name": path.rsplit("/", 1)[-1], "href": "file://" + path}
                    for path in found["loss_plots"]
                ],
            }
        )
    return rows


def _flips(report: dict) -> list[dict]:
    sections = []
    for pair in report["flips"]:
        rows = [
            {
                "benchmark": r["benchmark"],
                "shared": r["shared"],
                "lost": r["lost"],
                "gained": r["gained"],
                "lost_ids": ", ".join(map(str, r["lost_ids"])) or "—",
                "gained_ids": ", ".join(map(str, r["gained_ids"])) or "—",
            }
            for r in pair["rows"]
        ]
        if rows:
            sections.append({"pair": f"{pair['a']} → {pair['b']}", "rows": rows})
    return sections


def _gate(report: dict) -> dict | None:
    gate = report.get("gate")
    if not gate:
        return None
    rows = []
    for r in gate["rows"]:
        metric = report["benchmarks"][r["benchmark"]]["metric"]
        rows.append(
            {
                "benchmark": r["benchmark"],
                "reference": r["reference_phase"] or "—",
                "reference_score": fmt(metric, r["reference"]),
                "candidate": fmt(metric, r["candidate"]),
                "drop": _drop_text(metric, r["drop"]),
                "threshold": fmt_drop(metric, r["threshold"]),
                "p": "—" if r["p_value"] is None else format_p(r["p_value"]),
                "p_adjusted": "—" if r["p_adjusted"] is None else format_p(r["p_adjusted"]),
                "n": r["n"] if r["n"] is not None else "—",
                "verdict": r["verdict"],
                "failed": r["failed"],
            }
        )
    failed = [r["benchmark"] for r in rows if r["failed"]]
    return {
        "policy": gate["policy"],
        "candidate": gate["candidate"],
        "alpha": gate["alpha"],
        "verdict": f"FAILED ({', '.join(failed)})" if failed else "held",
        "failed": gate["failed"],
        "rows": rows,
        "warnings": gate["warnings"],
    }


def _drop_text(metric: str, drop: float | None) -> str:
    """A gate drop in the metric's unit; a negative drop is a gain and says so."""
    if drop is not None and drop < -1e-12:
        return f"{fmt_drop(metric, -drop)} gain"
    return fmt_drop(metric, None if drop is None else abs(drop))


def short_link(url: str) -> str:
    """A source URL in a few words: `owner/repo · file` on GitHub, else `host · last part`."""
    parsed = urlparse(url)
    if not parsed.netloc:
        return url
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc == "github.com" and len(parts) >= 2:
        tail = f" · {parts[-1]}" if len(parts) > 2 else ""
        return f"{parts[0]}/{parts[1]}{tail}"
    return parsed.netloc + (f" · {parts[-1]}" if parts else "")


def build_view(report: dict) -> dict:
    phases = report["phases"]
    benchmarks = report["benchmarks"]
    subtask_tables = {}
    for group, rows in report["subtasks"].items():
        averages = report["subtask_averages"][group]
        # an average exists only over one unit family, so any row's metric says how to show it
        metric = next(iter(rows.values()))["metric"]
        subtask_tables[group] = {
            "rows": [_score_row(name, entry, phases) for name, entry in rows.items()],
            "average": [fmt(metric, averages.get(p)) for p in phases] if averages else None,
        }
    partial = {p: s["partial"] for p, s in report["run_settings"].items() if s["partial"]}
    external = [
        {**b, "score_text": fmt(b["metric"], b["score"]), "source_text": short_link(b["source"])}
        for entries in report["external"].values()
        for b in entries
    ]
    return {
        "phases": phases,
        "phase_headers": [f"{p} (partial)" if p in partial else p for p in phases],
        "partial": [f"{p}: {'; '.join(reasons)}" for p, reasons in partial.items()],
        "first": phases[0],
        "benchmarks": [_score_row(n, e, phases) for n, e in benchmarks.items()],
        "subtask_tables": subtask_tables,
        "trajectory": _trajectory_rows(benchmarks, phases),
        "means": _means(report, phases),
        "paired": [r for n, e in benchmarks.items() for r in _paired_rows(n, e, phases)],
        "subtask_paired": [
            r
            for rows in report["subtasks"].values()
            for n, e in rows.items()
            if e is not benchmarks.get(n)
            for r in _paired_rows(n, e, phases)
        ],
        "detectable": _detectable_rows(benchmarks),
        "has_intervals": any(e["ci"] for e in benchmarks.values()),
        "external": external,
        "analysis": analysis_sections(report),
        "settings": _settings(report, phases),
        "provenance": _provenance(report, phases),
        "flips": _flips(report),
        "gate": _gate(report),
        "notes": report["notes"],
        "mismatches": report["mismatches"],
        "bootstrap": report["bootstrap"],
        "marks": {"gain": GAIN, "loss": LOSS},
    }


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
