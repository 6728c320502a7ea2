"""The report's words: best phase, gains and losses, each labelled by its paired test."""

from __future__ import annotations


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


def analysis_sentences(report: dict) -> list[str]:
    """Best-phase analysis in words, anchored to the first phase."""
    names = report["phases"]
    base = names[0]
    lines = []
    for name, entry in report["benchmarks"].items():
        best = entry["best_phase"]
        text = f"{name}: peaks at {best}"
        delta = _delta(entry, base, best)
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
            delta = _delta(entry, base, phase)
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
