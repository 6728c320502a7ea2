"""PNG plots of a report: one trajectory per benchmark, and a heat map of Δ vs the first phase."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def trajectory_png(name: str, entry: dict, phases: list[str], level: float) -> bytes:
    """Score per phase with its bootstrap band, the chance line, and the best phase ringed."""
    figure = Figure(figsize=(4.2, 3.0))
    axes = figure.add_subplot()
    x = np.arange(len(phases))
    y = np.array([np.nan if entry["scores"][p] is None else entry["scores"][p] for p in phases])
    axes.plot(x, y, marker="o", color="tab:blue", label=entry["metric"])
    if entry["ci"]:
        bands = [
            [ci["low"], ci["high"]] if (ci := entry["ci"].get(p)) else [np.nan, np.nan]
            for p in phases
        ]
        low, high = np.array(bands, dtype=float).T
        axes.fill_between(x, low, high, color="tab:blue", alpha=0.2, label=f"{100 * level:.0f}% CI")
    if entry["chance"] is not None:
        axes.axhline(entry["chance"], color="grey", linestyle="--", label="chance")
    best = entry["best_phase"]
    if best is not None:
        k = phases.index(best)
        axes.scatter([x[k]], [y[k]], s=160, facecolors="none", edgecolors="tab:red", label="best")
    axes.set_xticks(x, phases)
    axes.set_title(name)
    axes.legend(fontsize=7, loc="best")
    return _png(figure)


def heatmap_png(report: dict) -> bytes:
    """Δ vs the first phase for every benchmark and subtask (rows) over phases (columns)."""
    phases = report["phases"]
    rows: dict[str, dict] = dict(report["benchmarks"])
    for group in report["subtasks"].values():
        for name, entry in group.items():
            rows.setdefault(name, entry)
    labels = list(rows)
    data = np.array(
        [
            [np.nan if (d := rows[r]["delta_vs_p0"][p]) is None else d for p in phases]
            for r in labels
        ]
    )
    figure = Figure(figsize=(2.4 + 0.9 * len(phases), 1.2 + 0.35 * len(labels)))
    # room on the left for the longest row label, in inches at the default 10 pt font
    width = figure.get_figwidth()
    figure.subplots_adjust(left=min(0.6, (0.2 + 0.075 * max(map(len, labels))) / width))
    axes = figure.add_subplot()
    limit = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    image = axes.imshow(data, cmap="RdBu", vmin=-limit or -1, vmax=limit or 1, aspect="auto")
    axes.set_xticks(range(len(phases)), phases)
    axes.set_yticks(range(len(labels)), labels)
    for (i, j), value in np.ndenumerate(data):
        if np.isfinite(value):
            dark = abs(value) > 0.6 * limit  # white text where the colour is deep
            axes.text(
                j,
                i,
                f"{value:+.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    axes.set_title(f"Δ vs {phases[0]}")
    figure.colorbar(image, ax=axes)
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
