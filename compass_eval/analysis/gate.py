"""The regression gate: did the candidate phase lose more than allowed on any benchmark?"""

from __future__ import annotations

from dataclasses import dataclass, field

from compass_eval.analysis.narrative import find_paired
from compass_model.errors import CompassInputError

PEAK = "peak"
TOO_FEW_PHASES = "the gate needs at least two phases (a reference and a candidate)"


@dataclass(frozen=True)
class BenchmarkRule:
    """Per-benchmark overrides of the gate policy."""

    max_drop: float | None = None
    ignore: bool = False
    require_significant: bool | None = None


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds are absolute drops in the metric's own scale (0.05 = 5 points of accuracy)."""

    max_drop: float = 0.05
    against: str = PEAK
    candidate: str | None = None
    require_significant: bool = False
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

    @property
    def failed(self) -> bool:
        return self.verdict == "regression"


def evaluate_gate(report: dict, policy: GatePolicy) -> tuple[str, list[GateRow]]:
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
    unknown = sorted(set(policy.benchmarks) - set(report["benchmarks"]))
    if unknown:
        raise CompassInputError(
            f"policy names benchmark(s) absent from every phase: {', '.join(unknown)}"
        )
    earlier = phases[: phases.index(candidate)]
    rows = []
    for name, entry in report["benchmarks"].items():
        rule = policy.benchmarks.get(name, BenchmarkRule())
        threshold = policy.max_drop if rule.max_drop is None else rule.max_drop
        scores = entry["scores"]
        if policy.against == PEAK:
            ranked = [(scores[p], p) for p in earlier if scores.get(p) is not None]
            ref_phase = max(ranked, key=lambda sp: sp[0])[1] if ranked else None
        else:
            ref_phase = policy.against
        ref = scores.get(ref_phase) if ref_phase else None
        cand = scores.get(candidate)
        drop = ref - cand if ref is not None and cand is not None else None
        require = (
            policy.require_significant
            if rule.require_significant is None
            else (rule.require_significant)
        )
        if rule.ignore:
            verdict = "ignored"
        elif drop is None or ref_phase == candidate:
            verdict = "no comparison"
        elif drop <= threshold:
            verdict = "held"
        elif require:
            verdict = _significance_verdict(name, entry, ref_phase, candidate)
        else:
            verdict = "regression"
        rows.append(GateRow(name, ref_phase, ref, cand, drop, threshold, verdict))
    return candidate, rows


def _significance_verdict(name: str, entry: dict, reference: str, candidate: str) -> str:
    test = find_paired(entry, reference, candidate)
    if test is None:
        raise CompassInputError(
            f"the policy requires a significant drop, but {name} has no paired test between "
            f"{reference} and {candidate}; evaluate both with --log_samples"
        )
    return "regression" if test["significant"] else "within noise"


def gate_table(candidate: str, rows: list[GateRow]) -> str:
    """The verdict table in Markdown: readable in a terminal and in a GitHub step summary."""
    lines = [
        f"Candidate: {candidate}",
        "",
        "| benchmark | reference | ref. score | candidate | drop | threshold | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.benchmark} | {r.reference_phase or '—'} | {_num(r.reference)} | "
            f"{_num(r.candidate)} | {_num(r.drop)} | {r.threshold:.4f} | {r.verdict} |"
        )
    failed = [r.benchmark for r in rows if r.failed]
    lines += ["", f"Gate: {'FAILED (' + ', '.join(failed) + ')' if failed else 'held'}"]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
