"""Calibration of the report's tests, its intervals and the gate at the benchmarks' real sizes.

Simulated trajectories of four phases on n = 38, 57, 224, 475, 1,319 documents (items correlated
across phases through a per-document difficulty, about 20% of documents answered differently by
two phases). Printed per size:
- type-I error of each paired test under the null (equal true scores), side by side with the
  named baselines: scipy's exact binomial test (McNemar) and the percentile-bootstrap test the
  report used before (p = 2·min tail of the bootstrapped difference);
- the gate's family-wise false-fail rate over six benchmarks under null trajectories, for the
  default policy (max_drop 0.05, against peak, require_significant) and for max_drop 0;
- power at the minimum detectable drop the gate states (one benchmark really drops);
- coverage of each interval type (Wilson, BCa ROC-AUC, BCa chabsa-style macro-F1 × 1.5, and
  the JP Fin group's chosen prompt variant of seven, one ahead or all tied: the winner's
  interval, for the chosen variant's true score).
Everything calls the functions the report and the gate run. Usage:
  python benchmarks/gate_calibration.py [--sims 1000] [--iters 2000] [--sizes 38 57 224 475 1319]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binomtest, norm

from compass_eval.analysis import intervals
from compass_eval.analysis.gate import GatePolicy, evaluate_gate
from compass_eval.analysis.hypothesis import delong_test, mcnemar_exact
from compass_eval.analysis.power import minimum_detectable_drop
from compass_eval.analysis.resampling import (
    Bootstrap,
    Units,
    bca_interval,
    jackknife,
    replicates,
    wilson_interval,
)
from compass_eval.analysis.stats import MACRO_F1, MEAN, ROC_AUC, Statistic

PHASES = ["p0", "p1", "p2", "p3"]
BINARY = ("gsm8k", "gsm8k_cot_xml", "edinet_industry")
AUC = ("edinet_earnings", "edinet_fraud")
GROUP = "jp_fin_harness"
SPREAD = 1.0  # per-document difficulty sd; phase noise sd below gives ≈ 20% discordance
NOISE = 0.5
# The JP Fin group's prompt variants: true scores of seven variants, one ahead or all tied.
WINNER_CASES = {
    "winner, 1 of 7 ahead": (0.65,) + (0.60,) * 6,
    "winner, 7 tied": (0.60,) * 7,
}


def correct(rng, difficulty, shift=0.0):
    """One phase's 0/1 outcomes: P(correct) = Φ(difficulty + noise + shift) > 0.5."""
    return (difficulty + rng.normal(0, NOISE, len(difficulty)) + shift > 0).astype(float)


def auc_scores(rng, labels, doc_effect, shift=0.0):
    return np.column_stack(
        [labels, labels * (0.8 - shift) + doc_effect + rng.normal(0, 0.6, len(labels))]
    )


def old_bootstrap_p(a, b, iters, rng, statistic):
    """The replaced test: p = 2·min(P*(Δ* ≤ 0), P*(Δ* ≥ 0)) from a paired bootstrap."""
    idx = rng.integers(0, len(a), (iters, len(a)))
    deltas = np.array([statistic.point(b[i]) - statistic.point(a[i]) for i in idx])
    deltas = deltas[np.isfinite(deltas)]
    return min(1.0, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0)))


def _part(subtask, statistic, values, phase):
    return intervals._Part(
        subtask, statistic, values, Units(len(values)), (phase, subtask, id(values))
    )


def _group_side(phase, subtasks):
    parts = tuple(_part(f"sub{j}", Statistic(MEAN), v, phase) for j, v in enumerate(subtasks))
    return intervals._Side(((None, parts),))


def simulate_trajectory(rng, n, settings, drop_benchmark=None, drop=0.0):
    """A report dict with the candidate p3 tested against p0–p2 on six benchmarks."""
    resampler = intervals.Resampler({}, settings)
    benchmarks = {}
    for name in (*BINARY, *AUC, GROUP):
        shift = -drop if name == drop_benchmark else 0.0
        if name in AUC:
            labels = (np.arange(n) % 2).astype(float)
            effect = rng.normal(0, 0.5, n)
            logs = [auc_scores(rng, labels, effect, shift if k == 3 else 0.0) for k in range(4)]
            stat = Statistic(ROC_AUC)
        elif name == GROUP:
            difficulty = [rng.normal(0, SPREAD, n // 5) for _ in range(5)]
            logs = [[correct(rng, d) for d in difficulty] for _ in range(4)]
        else:
            difficulty = rng.normal(0, SPREAD, n)
            logs = [correct(rng, difficulty, 0.0) for _ in range(4)]
            if shift:
                logs[3] = _drop_outcomes(rng, logs[3], -shift)
        scores, paired = {}, []
        for k, phase in enumerate(PHASES):
            if name == GROUP:
                scores[phase] = float(np.mean([v.mean() for v in logs[k]]))
            elif name in AUC:
                scores[phase] = stat.point(logs[k])
            else:
                scores[phase] = float(logs[k].mean())
        for k in range(3):
            if name == GROUP:
                test = intervals._resampling_test(
                    _group_side(PHASES[k], logs[k]), _group_side("p3", logs[3]), resampler
                )
            elif name in AUC:
                test = intervals._delong_test(logs[k], logs[3], settings)
            else:
                test = intervals._binary_test(logs[k], logs[3], settings)
            paired.append({"a": PHASES[k], "b": "p3", "n": n, **test})
        benchmarks[name] = {"scores": scores, "paired": paired, "undefined": {}, "detectable": None}
    return {"phases": PHASES, "benchmarks": benchmarks, "bootstrap": {"alpha": settings.alpha}}


def _drop_outcomes(rng, outcome, drop):
    """Turn correct answers wrong at random until the share falls by `drop` (a real forgetting)."""
    out = outcome.copy()
    correct_docs = np.flatnonzero(out == 1)
    lose = rng.choice(
        correct_docs, size=min(len(correct_docs), round(drop * len(out))), replace=False
    )
    out[lose] = 0.0
    return out


def gate_rates(n, sims, settings, rng):
    fails = {"default": 0, "max_drop 0": 0}
    for _ in range(sims):
        report = simulate_trajectory(rng, n, settings)
        fails["default"] += evaluate_gate(report, GatePolicy()).failed
        fails["max_drop 0"] += evaluate_gate(report, GatePolicy(max_drop=0.0)).failed
    return {k: v / sims for k, v in fails.items()}


def gate_power(n, sims, settings, rng):
    family = 6 * 3
    mde = minimum_detectable_drop(n, settings.alpha / family, margin=0.05, two_sided=False)
    if mde is None:
        return None, None
    caught = 0
    for _ in range(sims):
        report = simulate_trajectory(rng, n, settings, drop_benchmark="gsm8k", drop=mde)
        result = evaluate_gate(report, GatePolicy())
        caught += any(r.failed for r in result.rows if r.benchmark == "gsm8k")
    return mde, caught / sims


def paired_type_one(n, sims, settings, rng):
    """Two-sided rejection rate at α under the null: Compass vs scipy exact vs old bootstrap."""
    rates = {"mcnemar (compass)": 0, "mcnemar (scipy)": 0, "old bootstrap, 0/1": 0, "delong": 0}
    old_iters = 500
    for _ in range(sims):
        difficulty = rng.normal(0, SPREAD, n)
        a, b = correct(rng, difficulty), correct(rng, difficulty)
        losses, gains = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
        rates["mcnemar (compass)"] += mcnemar_exact(losses, gains) <= settings.alpha
        scipy_p = binomtest(losses, losses + gains).pvalue if losses + gains else 1.0
        rates["mcnemar (scipy)"] += scipy_p <= settings.alpha
        rates["old bootstrap, 0/1"] += (
            old_bootstrap_p(a, b, old_iters, rng, Statistic(MEAN)) < settings.alpha
        )
        labels = (np.arange(n) % 2).astype(float)
        effect = rng.normal(0, 0.5, n)
        p = delong_test(auc_scores(rng, labels, effect), auc_scores(rng, labels, effect))
        rates["delong"] += p is not None and p <= settings.alpha
    return {k: v / sims for k, v in rates.items()}


def coverage(n, sims, settings, rng):
    """Share of intervals holding the true value, per interval type."""
    hits = {"wilson": 0, "bca roc_auc": 0, "bca chabsa f1": 0, **dict.fromkeys(WINNER_CASES, 0)}
    true_auc = _true_auc(rng)
    f1 = Statistic(MACRO_F1, 1.5)
    true_f1 = f1.point(_chabsa(rng, 400_000))
    for _ in range(sims):
        p = 0.6
        k = rng.binomial(n, p)
        low, high = wilson_interval(k, n, settings.level)
        hits["wilson"] += low <= p <= high
        labels = (rng.random(n) < 0.4).astype(float)
        values = np.column_stack([labels, labels * 0.8 + rng.normal(0, 0.8, n)])
        hits["bca roc_auc"] += _bca_covers(Statistic(ROC_AUC), values, true_auc, settings)
        hits["bca chabsa f1"] += _bca_covers(f1, _chabsa(rng, n), true_f1, settings)
        for name, truths in WINNER_CASES.items():
            hits[name] += _winner_covers(rng, n, settings, truths)
    return {k: v / sims for k, v in hits.items()}


def _chabsa(rng, n):
    gold = (rng.random(n) < 0.56).astype(float)
    pred = np.where(rng.random(n) < 0.75, gold, 1 - gold)
    return np.column_stack([gold, pred])


def _true_auc(rng):
    labels = (rng.random(400_000) < 0.4).astype(float)
    values = np.column_stack([labels, labels * 0.8 + rng.normal(0, 0.8, len(labels))])
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(values[:, 0], values[:, 1])


def _bca_covers(statistic, values, truth, settings):
    units = Units(len(values))
    reps = replicates(statistic, values, units, settings, "calibration")
    low, high = bca_interval(
        statistic.point(values), reps, jackknife(statistic, values, units), settings.level
    )
    return low <= truth <= high


def _winner_covers(rng, n, settings, truths):
    """Prompt variants of five subtasks on the same documents (one per-document difficulty for
    all variants): does the interval for the chosen variant hold that variant's true score?"""
    size = max(n // 5, 8)
    difficulty = [rng.normal(0, SPREAD, size) for _ in range(5)]
    candidates = []
    for v, truth in enumerate(truths):
        shift = np.hypot(SPREAD, NOISE) * norm.ppf(truth)  # P(correct) = truth
        parts = tuple(
            _part(f"sub{j}", Statistic(MEAN), correct(rng, d, shift), f"v{v}")
            for j, d in enumerate(difficulty)
        )
        candidates.append((f"v{v}", parts))
    side = intervals._Side(tuple(candidates))
    found = intervals.side_interval(side, intervals.Resampler({}, settings))
    return found["low"] <= truths[int(np.argmax(side.candidate_points()))] <= found["high"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--iters", type=int, default=2000, help="resamples per interval/test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[38, 57, 224, 475, 1319])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = Bootstrap(iters=args.iters)
    rng = np.random.default_rng(args.seed)
    print(f"{args.sims} simulations per figure, {args.iters} resamples, α = {settings.alpha}")
    print(
        "Monte-Carlo standard error of a printed rate: "
        f"{np.sqrt(0.05 * 0.95 / args.sims):.3f} at 0.05 or 0.95, "
        f"{np.sqrt(0.01 * 0.99 / args.sims):.3f} at 0.01 or 0.99"
    )
    for n in args.sizes:
        start = time.perf_counter()
        print(f"\nn = {n}")
        for name, rate in paired_type_one(n, args.sims, settings, rng).items():
            print(f"  type-I, paired {name:<22} {rate:.3f}")
        for name, rate in gate_rates(n, args.sims, settings, rng).items():
            print(f"  gate family-wise false-fail, six benchmarks, {name:<12} {rate:.3f}")
        mde, power = gate_power(n, args.sims, settings, rng)
        if mde is None:
            print("  gate power: no drop within 20% discordance is detectable at this size")
        else:
            print(f"  gate power at its stated minimum detectable drop {mde:.3f}: {power:.3f}")
        for name, rate in coverage(n, args.sims, settings, rng).items():
            print(f"  coverage, {name:<24} {rate:.3f}")
        print(f"  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
