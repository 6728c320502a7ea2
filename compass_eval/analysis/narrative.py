"""The report's words: best phase, gains and losses, each labelled by its paired test."""

from __future__ import annotations

from compass_eval.analysis.hypothesis import format_p
from compass_eval.analysis.units import fmt, fmt_delta


def find_paired(entry: dict, a: str, b: str) -> dict | None:
    """The paired test between two phases, in either stored order, oriented as b − a."""
    for test in entry["paired"]:
        if (test["a"], test["b"]) == (a, b):
            return test
        if (test["a"], test["b"]) == (b, a):
            flipped = {**test, "a": a, "b": b}
            if test["delta"] is not None:
                flipped["delta"] = -test["delta"]
            if test.get("ci"):
                flipped["ci"] = [-test["ci"][1], -test["ci"][0]]
            for one, other in (("losses", "gains"), ("p_drop", "p_gain")):
                if one in test:
                    flipped[one], flipped[other] = test[other], test[one]
            return flipped
    return None


def analysis_sections(report: dict) -> list[dict]:
    """The analysis in short points: the best phase per benchmark, then what each phase changed
    against the first, significant changes one per point and the rest together."""
    names = report["phases"]
    base = names[0]
    sections = [
        {
            "heading": "Best phase",
            "points": [_best_point(n, e, base) for n, e in report["benchmarks"].items()],
        }
    ]
    for phase in names[1:]:
        significant, noise, untested = [], [], []
        for name, entry in report["benchmarks"].items():
            delta = _delta(entry, base, phase)
            if delta is None:
                continue
            change = f"{name} {fmt_delta(entry['metric'], delta)}"
            test = find_paired(entry, base, phase)
            if test is None or test["p_value"] is None:
                untested.append(change)
            elif test["significant"]:
                kind = "gain" if delta > 0 else "loss"
                p = format_p(test["p_adjusted"], test.get("resolution"))
                significant.append(f"significant {kind}: {change} (BH-adjusted p {_p_text(p)})")
            else:
                noise.append(change)
        points = significant
        if noise:
            points.append("within noise: " + ", ".join(noise))
        if untested:
            points.append("not tested (no paired sample logs): " + ", ".join(untested))
        sections.append({"heading": f"{phase} vs {base}", "points": points or ["no benchmark"]})
    return sections


def _p_text(formatted: str) -> str:
    return formatted if formatted.startswith("<") else f"= {formatted}"


def _best_point(name: str, entry: dict, base: str) -> str:
    metric = entry["metric"]
    scores = entry["scores"]
    best, tied = entry["best_phase"], entry.get("tied_best") or []
    if best is not None:
        text = f"{name}: best at {best} ({fmt(metric, scores[best])})"
        delta = _delta(entry, base, best)
        if best != base and delta is not None:
            text += f", {fmt_delta(metric, delta)} vs {base}{_noise(entry, base, best)}"
    elif tied:
        text = f"{name}: {', '.join(tied)} tie at {fmt(metric, scores[tied[0]])}; no single best"
    else:
        shown = [s for s in scores.values() if s is not None]
        text = f"{name}: {fmt(metric, shown[0]) if shown else 'no score'} in every phase; no best"
    chance = entry["chance"]
    below = [p for p, s in scores.items() if s is not None and chance is not None and s < chance]
    if below:
        text += f"; below chance ({fmt(metric, chance)}) in {', '.join(below)}"
    return text + "."


def _delta(entry: dict, a: str, b: str) -> float | None:
    """b − a on the documents the paired test used, so a label never contradicts its number."""
    test = find_paired(entry, a, b)
    if test is not None and test["delta"] is not None:
        return test["delta"]
    return entry["delta_vs_p0"].get(b) if a == next(iter(entry["scores"])) else None


def _noise(entry: dict, a: str, b: str) -> str:
    test = find_paired(entry, a, b)
    if test is None:
        return " (untested)"
    if test["p_value"] is None:
        return " (test undefined)"
    return " (significant)" if test["significant"] else " (within noise)"
