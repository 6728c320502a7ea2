"""The regression gate: did the candidate phase lose more than allowed on any benchmark?

With `require_significant` (the default) a benchmark fails only when a one-sided paired test on
the documents both phases scored says the candidate is worse than a reference by more than
`max_drop`, after Holm's correction over every (benchmark, reference) tested, so the gate's
family-wise false-fail rate stays at α = 1 − the report's confidence level. Against `peak`, every
earlier phase is a reference in that family: picking the best one first would be a selection the
test does not see. A gain never fails; missing evidence never passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scipy.stats import norm

from compass_eval.analysis.hypothesis import drop_test_binary, format_p, holm, positive_p
from compass_eval.analysis.narrative import find_paired
from compass_eval.analysis.power import DISCORDANCE, POWER, minimum_detectable_drop
from compass_model.errors import CompassInputError
from compass_model.typed import option

PEAK = "peak"
TOO_FEW_PHASES = "the gate needs at least two phases (a reference and a candidate)"
FAILING = frozenset({"regression", "missing in candidate", "no reference", "undefined"})


@dataclass(frozen=True)
class BenchmarkRule:
    """Per-benchmark overrides of the gate policy."""

    max_drop: float | None = option(None, ge=0.0, help="this benchmark's largest allowed drop")
    ignore: bool = False
    require_significant: bool | None = None


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds are absolute drops in the metric's own scale (0.05 = 5 points of accuracy)."""

    max_drop: float = option(0.05, ge=0.0, help="largest allowed drop, in the metric's own scale")
    against: str = PEAK
    candidate: str | None = None
    require_significant: bool = True
    benchmarks: dict[str, BenchmarkRule] = field(default_factory=dict)


@dataclass(frozen=True)
class GateRow:
    benchmark: str
    reference_phase: str | None
    reference: float | None
    candidate: float | None
    drop: float | None
    threshold: float
    verdict: str
    p_value: float | None = None
    p_adjusted: float | None = None
    n: int | None = None

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


@dataclass(frozen=True)
class GateResult:
    candidate: str
    rows: list[GateRow]
    warnings: list[str]
    alpha: float

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.rows)


@dataclass(frozen=True)
class _Hypothesis:
    benchmark: str
    reference: str
    drop: float
    p_value: float
    n: int


def evaluate_gate(report: dict, policy: GatePolicy) -> GateResult:
    """One row per benchmark of the report; the candidate defaults to the last phase."""
    phases = report["phases"]
    if len(phases) < 2:
        raise CompassInputError(TOO_FEW_PHASES)
    candidate = policy.candidate or phases[-1]
    if candidate not in phases:
        raise CompassInputError(f"candidate phase '{candidate}' is not among the phases {phases}")
    if policy.against not in (PEAK, *phases):
        raise CompassInputError(
            f"--against must be 'peak' or one of {phases}, not '{policy.against}'"
        )
    if policy.against == candidate:
        raise CompassInputError(
            f"--against {candidate} is the candidate itself; name another phase"
        )
    unknown = sorted(set(policy.benchmarks) - set(report["benchmarks"]))
    if unknown:
        raise CompassInputError(
            f"policy names benchmark(s) absent from every phase: {', '.join(unknown)}"
        )
    alpha = float(report.get("bootstrap", {}).get("alpha", 0.05))
    earlier = phases[: phases.index(candidate)]
    rows: dict[str, GateRow] = {}
    family: list[_Hypothesis] = []
    for name, entry in report["benchmarks"].items():
        rule = policy.benchmarks.get(name, BenchmarkRule())
        threshold = policy.max_drop if rule.max_drop is None else rule.max_drop
        require = (
            policy.require_significant
            if rule.require_significant is None
            else rule.require_significant
        )
        scores = entry["scores"]
        references = earlier if policy.against == PEAK else [policy.against]
        present = [p for p in references if scores.get(p) is not None]
        peak = max(present, key=lambda p: scores[p]) if present else None
        cand = scores.get(candidate)
        row = GateRow(name, peak, scores.get(peak) if peak else None, cand, None, threshold, "held")
        if rule.ignore:
            rows[name] = _replace(row, verdict="ignored")
        elif cand is None:
            verdict = (
                "undefined" if candidate in entry.get("undefined", {}) else "missing in candidate"
            )
            rows[name] = _replace(row, verdict=verdict)
        elif peak is None:
            rows[name] = _replace(row, verdict="no reference")
        elif not require:
            drop = scores[peak] - cand
            rows[name] = _replace(
                row, drop=drop, verdict="regression" if drop > threshold else "held"
            )
        else:
            rows[name] = row
            for reference in present:
                hypothesis = _drop_hypothesis(name, entry, reference, candidate, threshold)
                if hypothesis is None:
                    rows[name] = _replace(row, verdict="undefined")
                    break
                family.append(hypothesis)
    adjusted = holm([h.p_value for h in family])
    for name in {h.benchmark for h in family}:
        if rows[name].verdict == "undefined":
            continue
        tested = sorted(
            ((adj, h) for h, adj in zip(family, adjusted, strict=True) if h.benchmark == name),
            key=lambda pair: pair[0],
        )
        worst_p, worst = tested[0]
        failed = worst_p <= alpha
        shown = (
            worst
            if failed
            else next(h for _, h in tested if h.reference == rows[name].reference_phase)
        )
        shown_adj = next(adj for adj, h in tested if h is shown)
        rows[name] = _replace(
            rows[name],
            reference_phase=shown.reference,
            reference=report["benchmarks"][name]["scores"][shown.reference],
            drop=shown.drop,
            p_value=shown.p_value,
            p_adjusted=shown_adj,
            n=shown.n,
            verdict="regression" if failed else "held",
        )
    ordered = [rows[name] for name in report["benchmarks"]]
    return GateResult(candidate, ordered, _warnings(report, ordered, len(family), alpha), alpha)


def _replace(row: GateRow, **changes) -> GateRow:
    return GateRow(**{**row.__dict__, **changes})


def _drop_hypothesis(
    name: str, entry: dict, reference: str, candidate: str, margin: float
) -> _Hypothesis | None:
    """One-sided p that the candidate is worse than the reference by more than the margin."""
    test = find_paired(entry, reference, candidate)
    if test is None:
        raise CompassInputError(
            f"the policy requires a significant drop, but {name} has no paired test between "
            f"{reference} and {candidate}; evaluate both with --log_samples"
        )
    if test["delta"] is None:
        return None
    drop = -test["delta"]
    method = test["method"]
    if method == "mcnemar_exact":
        p = drop_test_binary(test["losses"], test["gains"], test["n"], margin)
    elif margin == 0.0 and "p_drop" in test:
        p = test["p_drop"]
    elif test.get("se"):
        p = float(norm.sf((drop - margin) / test["se"]))
    elif test.get("se") == 0.0:
        # Every resample gives the same difference (no document changed): the drop is known.
        p = 1.0 if drop <= margin else test.get("resolution", 0.0)
    else:
        return None
    return _Hypothesis(name, reference, drop, positive_p(p), test["n"])


def _warnings(report: dict, rows: list[GateRow], tests: int, alpha: float) -> list[str]:
    """Say where a threshold is below what a 0/1 benchmark's documents can detect."""
    warnings = []
    for row in rows:
        entry = report["benchmarks"][row.benchmark]
        detectable = entry.get("detectable")
        if row.verdict == "ignored" or not detectable:
            continue
        n = detectable["n"]
        gate_drop = minimum_detectable_drop(
            n, alpha / max(tests, 1), margin=row.threshold, two_sided=False
        )
        if gate_drop is None or row.threshold < (detectable["drop"] or 1.0):
            caught = (
                f"only a drop of {gate_drop:.3f} or more is caught with {POWER:.0%} power"
                if gate_drop is not None
                else f"no drop within {DISCORDANCE:.0%} discordance is caught with {POWER:.0%} power"
            )
            warnings.append(
                f"{row.benchmark}: max_drop {row.threshold:g} is below what {n} documents can "
                f"resolve; {caught} at this gate's corrected level"
            )
    return warnings


def gate_table(result: GateResult) -> str:
    """The verdict table in Markdown: readable in a terminal and in a GitHub step summary."""
    lines = [
        f"Candidate: {result.candidate}",
        "",
        "| benchmark | reference | ref. score | candidate | drop (shared docs) | threshold "
        "| p | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rows:
        lines.append(
            f"| {r.benchmark} | {r.reference_phase or '—'} | {_num(r.reference)} | "
            f"{_num(r.candidate)} | {_num(r.drop)} | {r.threshold:.4f} | "
            f"{'—' if r.p_value is None else format_p(r.p_value)} | "
            f"{'—' if r.p_adjusted is None else format_p(r.p_adjusted)} | {r.verdict} |"
        )
    failed = [r.benchmark for r in result.rows if r.failed]
    lines += ["", f"Gate: {'FAILED (' + ', '.join(failed) + ')' if failed else 'held'}"]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text  # a zero drop is not a gain
