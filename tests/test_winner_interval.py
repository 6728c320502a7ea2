"""The interval for the leaderboard's chosen prompt variant (compass_eval/analysis/winner.py).

Exact values where the conditional distribution is known in closed form, coverage of the chosen
variant's true score under Gaussian scores where the choice is a tie and where it is clear, and
the lattice ties that 0/1 means produce.
"""

import json

import numpy as np
import pytest
from analysis_logs import acc_task, binary, write_phase
from scipy.stats import norm
from sklearn.metrics import f1_score

from compass_eval.analysis import intervals
from compass_eval.analysis.report_cli import main as report_main
from compass_eval.analysis.resampling import Bootstrap, Units
from compass_eval.analysis.stats import MEAN, Statistic
from compass_eval.analysis.winner import winner_interval


def untruncated(points: np.ndarray, reps: np.ndarray, level: float) -> tuple[float, float]:
    """The hybrid interval for the first variant when the choice constrains nothing: truncation
    at ±c·sd only (c: the simultaneous band's quantile over all variants), so
    P(X ≤ x | μ) = (Φ((x − μ)/sd) − Φ(−c)) / (Φ(c) − Φ(−c)), solved for μ by hand."""
    alpha = 1 - level
    beta = alpha / 10
    hybrid = (alpha - beta) / (1 - beta)
    sds = reps.std(axis=1, ddof=1)
    c = np.quantile(np.max(np.abs(reps - points[:, None]) / sds[:, None], axis=0), 1 - beta)
    x, sd = points[0], sds[0]
    mass = norm.cdf(c) - norm.cdf(-c)

    def t(p):
        return norm.ppf(norm.cdf(-c) + p * mass)

    return x - t(1 - hybrid / 2) * sd, x - t(hybrid / 2) * sd


def test_one_candidate_is_the_closed_form_interval():
    reps = 0.7 + 0.02 * np.random.default_rng(1).standard_normal(20_000)
    found = winner_interval(np.array([0.7]), reps[None, :], 0.95)
    assert found == pytest.approx(untruncated(np.array([0.7]), reps[None, :], 0.95), abs=1e-8)
    assert found[0] == pytest.approx(0.7 - 1.96 * 0.02, abs=2e-3)  # ≈ the normal interval


def test_an_identical_twin_is_no_choice():
    """Two variants with the same answers everywhere: choosing between them selects nothing."""
    reps = 0.6 + 0.03 * np.random.default_rng(2).standard_normal(10_000)
    alone = winner_interval(np.array([0.6]), reps[None, :], 0.95)
    twins = winner_interval(np.array([0.6, 0.6]), np.stack([reps, reps]), 0.95)
    assert twins == pytest.approx(alone, abs=1e-12)


def test_a_far_behind_rival_does_not_move_the_interval_and_a_close_one_lowers_it():
    rng = np.random.default_rng(3)
    leader = 0.7 + 0.02 * rng.standard_normal(20_000)
    behind = 0.3 + 0.02 * rng.standard_normal(20_000)
    close = 0.69 + 0.02 * rng.standard_normal(20_000)
    far_points, far_reps = np.array([0.7, 0.3]), np.stack([leader, behind])
    unconstrained = untruncated(far_points, far_reps, 0.95)
    assert winner_interval(far_points, far_reps, 0.95) == pytest.approx(unconstrained, abs=1e-8)
    near = winner_interval(np.array([0.7, 0.69]), np.stack([leader, close]), 0.95)
    assert near[0] < unconstrained[0] - 0.01  # winning a near tie says less about the truth


def _gaussian_coverage(truths: np.ndarray, correlation: float, sims: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    k = len(truths)
    cov = 0.01**2 * (correlation + (1 - correlation) * np.eye(k))
    chol = np.linalg.cholesky(cov)
    hits = 0
    for _ in range(sims):
        points = truths + chol @ rng.standard_normal(k)
        reps = points[:, None] + chol @ rng.standard_normal((k, 2000))
        low, high = winner_interval(points, reps, 0.95)
        hits += low <= truths[np.argmax(points)] <= high
    return hits / sims


@pytest.mark.parametrize(
    "gap, correlation",
    [(0.0, 0.0), (0.0, 0.7), (0.015, 0.0), (0.015, 0.7), (0.05, 0.0)],
    ids=["tied", "tied-correlated", "near", "near-correlated", "far"],
)
def test_the_chosen_variants_true_score_is_covered_whatever_the_gap(gap, correlation):
    """Seven variants, one ahead by `gap` (0, 1.5 and 5 standard errors): 95% coverage of the
    chosen variant's truth in each (400 simulations: ±0.022 at two standard errors). Dropping
    the conditioning on the choice gives about 0.6 in the tied case."""
    truths = np.array([0.6 + gap] + [0.6] * 6)
    assert 0.93 <= _gaussian_coverage(truths, correlation, 400, seed=int(gap * 1e4)) <= 0.975


def test_an_exact_tie_on_a_lattice_still_gives_an_interval():
    """0/1 means tie exactly; without the half-step continuity correction the winner would sit
    on its truncation point and no true score would be accepted."""
    rng = np.random.default_rng(5)
    a = (rng.random(40) < 0.5).astype(float)
    b = np.roll(a, 1)
    rows = rng.integers(0, 40, (4000, 40))
    reps = np.stack([a[rows].mean(axis=1), b[rows].mean(axis=1)])
    low, high = winner_interval(np.array([a.mean(), b.mean()]), reps, 0.95)
    assert low < a.mean() < high and high - low > 0.2


def test_resamples_undefined_for_any_variant_are_left_out():
    rng = np.random.default_rng(6)
    reps = 0.5 + 0.05 * rng.standard_normal((2, 1000))
    holed = reps.copy()
    holed[1, :10] = np.nan
    points = np.array([0.5, 0.4])
    assert winner_interval(points, holed, 0.9) == pytest.approx(
        winner_interval(points, reps[:, 10:], 0.9)
    )


def test_the_report_gives_the_chosen_variant_the_winners_interval(tmp_path):
    """A phase with two prompt variants of the five JP Fin tasks: the group row takes the better
    variant, names it, and its interval is the winner's, for that variant's score."""
    gold, pred = [0, 1] * 20, [0, 1] * 15 + [1, 0] * 5
    chabsa = {
        "metric": "f1",
        "values": [[g, p] for g, p in zip(gold, pred, strict=True)],
        "score": 1.5 * f1_score(gold, pred, average="macro"),
    }
    tasks = {}
    for variant, shift in (("1.0-0.1", 0), ("1.0-0.2", 3)):
        tasks[f"chabsa-{variant}"] = chabsa
        for task in ("cma_basics", "cpa_audit", "fp2", "security_sales_1"):
            tasks[f"{task}-{variant}"] = acc_task(binary(20 + shift, 40, first=shift))
    write_phase(tmp_path / "p0", tasks)
    out = tmp_path / "report"
    args = ["--phases", f"p0={tmp_path / 'p0'}", "--out", str(out), "--iters", "2000"]
    assert report_main(args) == 0
    entry = json.loads((out / "report.json").read_text())["benchmarks"]["jp_fin_harness"]
    score = (chabsa["score"] + 4 * 23 / 40) / 5
    assert entry["variants"]["p0"] == "1.0-0.2" and entry["scores"]["p0"] == pytest.approx(score)
    ci = entry["ci"]["p0"]
    assert ci["method"] == "winner" and ci["low"] < score < ci["high"]


def test_variant_replicates_take_the_unbiased_variance_for_the_winners_interval():
    """The bootstrap's variance of a mean over m documents is (m−1)/m of the unbiased one: at
    eight documents a subtask that alone left the interval 1–2 points short of its coverage."""
    rng = np.random.default_rng(7)
    candidates = []
    for v in range(2):
        values = (rng.random(8) < 0.5).astype(float)
        part = intervals._Part("sub", Statistic(MEAN), values, Units(8), (f"v{v}",))
        candidates.append((f"v{v}", (part,)))
    side = intervals._Side(tuple(candidates))
    resampler = intervals.Resampler({}, Bootstrap(iters=4000))
    points = side.candidate_points()[:, None]
    plain = side.candidate_replicates(resampler)
    fair = side.candidate_replicates(resampler, unbiased=True)
    np.testing.assert_allclose(fair - points, (plain - points) * np.sqrt(8 / 7))
    assert plain[0].var() == pytest.approx(points[0, 0] * (1 - points[0, 0]) / 8, rel=0.08)
