"""One unit system per metric type, so a number reads the same in every table, sentence and plot.

ROC-AUC and MCC stay 0.xxx and their differences ±0.xxx; every other metric (accuracy, exact
match, F1, the group means) is a percentage and its differences are points (pt). report.json
keeps lm-eval's fractions; only what a reader sees is scaled here.
"""

from __future__ import annotations

from compass_eval.analysis.benchmarks import UNSCALED_METRICS

PERCENT = "percent"
UNSCALED = "unscaled"
# Family name -> how a reader sees its differences (heading of a means row, a colour bar).
FAMILY_LABELS = {PERCENT: "accuracy-type scores, pt", UNSCALED: "ROC-AUC / MCC, ±0.xxx"}


def family(metric: str) -> str:
    """Which unit family a metric belongs to: numbers of two families are never averaged."""
    return UNSCALED if metric in UNSCALED_METRICS else PERCENT


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if family(metric) == UNSCALED else f"{100 * value:.2f}%"


def fmt_delta(metric: str, value: float | None) -> str:
    return fmt_family_delta(family(metric), value)


def fmt_family_delta(unit_family: str, value: float | None) -> str:
    """A difference (or a mean of differences) within one unit family."""
    if value is None:
        return "—"
    if unit_family == UNSCALED:
        return f"{value:+.3f}"
    return f"{100 * value:+.2f} pt"


def fmt_drop(metric: str, value: float | None) -> str:
    """An unsigned size of a difference (a threshold, a drop) in the metric's own unit."""
    if value is None:
        return "—"
    return f"{value:.3f}" if family(metric) == UNSCALED else f"{100 * value:.2f} pt"


def plot_scale(metric: str) -> float:
    """Factor from lm-eval's fraction to the unit a plot axis shows."""
    return 1.0 if family(metric) == UNSCALED else 100.0


def axis_label(metric: str) -> str:
    return f"{metric} (0–1)" if family(metric) == UNSCALED else f"{metric} (%)"


def delta_axis_label(metric_family: str) -> str:
    return "Δ (±0.xxx)" if metric_family == UNSCALED else "Δ (pt)"
