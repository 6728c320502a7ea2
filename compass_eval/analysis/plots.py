"""PNG plots of a report: one trajectory per benchmark, and a heat map of Δ vs the first phase.

Axes are in the metric's own unit (ROC-AUC 0–1, others %); a star marks a phase whose paired
test against the first phase is significant after Benjamini–Hochberg. The heat map gives each
unit family its own panel and colour scale, so accuracy points and AUC differences never share
one.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from compass_eval.analysis.narrative import find_paired
from compass_eval.analysis.units import (
    FAMILY_LABELS,
    UNSCALED,
    axis_label,
    delta_axis_label,
    family,
    plot_scale,
)

_DPI = 110
_LEGEND = 9


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _significant(entry: dict, first: str, phase: str) -> bool:
    test = find_paired(entry, first, phase) if phase != first else None
    return bool(test and test["p_value"] is not None and test["significant"])


def trajectory_png(name: str, entry: dict, phases: list[str], level: float) -> bytes:
    """Score per phase with its interval band, the chance line, the best phase ringed and the
    phases significantly different from the first starred."""
    metric = entry["metric"]
    scale = plot_scale(metric)
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.add_subplot()
    x = np.arange(len(phases))
    y = scale * np.array(
        [np.nan if entry["scores"][p] is None else entry["scores"][p] for p in phases]
    )
    axes.plot(x, y, marker="o", color="tab:blue", label=metric)
    if entry["ci"]:
        bands = [
            [ci["low"], ci["high"]] if (ci := entry["ci"].get(p)) else [np.nan, np.nan]
            for p in phases
        ]
        low, high = scale * np.array(bands, dtype=float).T
        axes.fill_between(x, low, high, color="tab:blue", alpha=0.2, label=f"{100 * level:.0f}% CI")
    if entry["chance"] is not None:
        axes.axhline(scale * entry["chance"], color="grey", linestyle="--", label="chance")
    best = entry["best_phase"]
    if best is not None:
        k = phases.index(best)
        axes.scatter([x[k]], [y[k]], s=220, facecolors="none", edgecolors="tab:red", label="best")
    starred = [k for k, p in enumerate(phases) if _significant(entry, phases[0], p)]
    if starred:
        axes.scatter(
            x[starred],
            y[starred],
            marker="*",
            s=200,
            color="tab:orange",
            zorder=3,
            label=f"significant vs {phases[0]} (BH)",
        )
    axes.set_xticks(x, phases)
    axes.set_xlabel("phase")
    axes.set_ylabel(axis_label(metric))
    axes.set_title(name)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=_LEGEND, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _png(figure)


def heat_panels(report: dict) -> dict[str, dict[str, dict]]:
    """The heat map's rows (benchmarks, then subtasks), one panel per unit family."""
    rows: dict[str, dict] = dict(report["benchmarks"])
    for group in report["subtasks"].values():
        for name, entry in group.items():
            rows.setdefault(name, entry)
    panels: dict[str, dict[str, dict]] = {}
    for name, entry in rows.items():
        panels.setdefault(family(entry["metric"]), {})[name] = entry
    return panels


def heatmap_png(report: dict) -> bytes:
    """Δ vs the first phase, benchmarks and subtasks (rows) over phases (columns), one panel and
    colour scale per unit family; "*" marks a significant Δ."""
    phases = report["phases"]
    panels = heat_panels(report)
    heights = [len(rows) for rows in panels.values()]
    figure = Figure(figsize=(3.0 + 1.1 * len(phases), 1.6 + 0.5 * sum(heights)))
    grid = figure.add_gridspec(len(panels), 1, height_ratios=heights or [1])
    for panel, (unit, rows) in enumerate(panels.items()):
        labels = list(rows)
        axes = figure.add_subplot(grid[panel])
        scale = plot_scale(next(iter(rows.values()))["metric"])
        data = scale * np.array(
            [
                [np.nan if (d := rows[r]["delta_vs_p0"][p]) is None else d for p in phases]
                for r in labels
            ]
        )
        limit = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
        limit = limit or 1.0
        image = axes.imshow(data, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        axes.set_xticks(range(len(phases)), phases)
        axes.set_yticks(range(len(labels)), labels)
        for (i, j), value in np.ndenumerate(data):
            if np.isfinite(value):
                star = "*" if _significant(rows[labels[i]], phases[0], phases[j]) else ""
                text = f"{value:+.3f}" if unit == UNSCALED else f"{value:+.1f}"
                axes.text(
                    j,
                    i,
                    text + star,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if abs(value) > 0.6 * limit else "black",
                )
        axes.set_title(f"Δ vs {phases[0]} — {FAMILY_LABELS[unit]}", fontsize=10)
        colorbar = figure.colorbar(image, ax=axes)
        colorbar.set_label(delta_axis_label(unit))
    figure.text(0.01, 0.0, "* significant vs first phase (BH-adjusted)", fontsize=8)
    return _png(figure)


def all_plots(report: dict) -> dict[str, bytes]:
    """File name -> PNG bytes."""
    phases = report["phases"]
    plots = {
        f"trajectory_{name}.png": trajectory_png(name, entry, phases, report["bootstrap"]["level"])
        for name, entry in report["benchmarks"].items()
    }
    if report["benchmarks"] or report["subtasks"]:
        plots["heatmap_delta.png"] = heatmap_png(report)
    return plots
