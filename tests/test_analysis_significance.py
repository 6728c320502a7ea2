"""Paired tests, multiplicity and the gate: exact values on hand-made cases, through the real CLIs."""

import json

import numpy as np
import pytest
from analysis_logs import acc_task, binary, write_phase
from scipy.stats import binomtest

from compass_eval.analysis import hypothesis, resampling
from compass_eval.analysis.gate_cli import main as gate_main
from compass_eval.analysis.report_cli import main as report_main
from compass_eval.analysis.stats import ROC_AUC, Statistic


@pytest.fixture(autouse=True)
def no_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.mark.parametrize(
    ("losses", "gains", "expected"),
    [(1, 0, 1.0), (0, 0, 1.0), (4, 0, 0.125), (0, 4, 0.125), (7, 2, 92 / 512), (2, 7, 92 / 512)],
)
def test_exact_mcnemar_on_hand_made_tables(losses, gains, expected):
    assert hypothesis.mcnemar_exact(losses, gains) == pytest.approx(expected, abs=1e-15)


def test_no_p_value_is_ever_zero():
    assert hypothesis.mcnemar_exact(1319, 0) > 0
    assert hypothesis.drop_test_binary(1319, 0, 1319, 0.0) > 0
    assert hypothesis.drop_test_binary(1319, 0, 1319, 0.05) > 0
    assert hypothesis.swap_p_value(1.0, np.zeros(999)) == pytest.approx(1 / 1000)
    assert hypothesis.format_p(1 / 10001, 1 / 10001) == "< 0.0001"
    assert hypothesis.format_p(1e-40) == "< 0.001"
    assert hypothesis.format_p(0.1796875) == "0.180"


def test_one_sided_drop_tests():
    # margin 0: the exact binomial tail, P(X >= 4 | 4, 1/2) = 1/16
    assert hypothesis.drop_test_binary(4, 0, 10, 0.0) == pytest.approx(1 / 16)
    assert hypothesis.drop_test_binary(1, 0, 10, 0.0) == pytest.approx(0.5)
    # a gain is never evidence of a drop
    assert hypothesis.drop_test_binary(0, 5, 57, 0.05) > 0.5
    # Tango's statistic at margin 0 is Edwards' continuity-corrected McNemar
    assert hypothesis.tango_z(np.array(9.0), np.array(2.0), 40, 0.0) == pytest.approx(6 / 11**0.5)


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    assert hypothesis.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert hypothesis.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_wilson_matches_scipy():
    for k, n in [(0, 38), (2, 40), (19, 38), (57, 57), (700, 1319)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert resampling.wilson_interval(k, n, 0.95) == pytest.approx((ref.low, ref.high))


def _delong_by_definition(a, b):
    """O(n²) DeLong from the kernel's definition, independently of the vectorised code."""

    def components(values):
        pos = values[values[:, 0] == 1, 1]
        neg = values[values[:, 0] == 0, 1]
        kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return kernel.mean(axis=1), kernel.mean(axis=0)

    (xa, ya), (xb, yb) = components(a), components(b)
    var = np.var(xb - xa, ddof=1) / len(xa) + np.var(yb - ya, ddof=1) / len(ya)
    return (xb - xa).mean(), var**0.5


def test_delong_matches_its_definition():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 80).astype(float)
    a = np.column_stack([labels, np.round(rng.random(80) + 0.3 * labels, 1)])
    b = np.column_stack([labels, np.round(rng.random(80) + 0.6 * labels, 1)])
    assert hypothesis.delong(a, b) == pytest.approx(_delong_by_definition(a, b), abs=1e-12)
    assert hypothesis.delong_test(a, a) == 1.0


def test_jackknife_matches_brute_force():
    rng = np.random.default_rng(2)
    labels = (rng.random(60) < 0.3).astype(float)
    values = np.column_stack([labels, np.round(rng.random(60) + 0.8 * labels, 1)])
    stat = Statistic(ROC_AUC)
    jack = resampling.jackknife(stat, values, resampling.Units(60))
    brute = [stat.point(np.delete(values, i, axis=0)) for i in range(60)]
    assert jack == pytest.approx(brute, abs=1e-12)
    clusters = resampling.units_from_keys(np.arange(60) // 3, 60)
    by_cluster = resampling.jackknife(stat, values, clusters)
    brute = [stat.point(np.delete(values, range(3 * c, 3 * c + 3), axis=0)) for c in range(20)]
    assert by_cluster == pytest.approx(brute, abs=1e-12)


def test_bca_without_bias_or_skew_is_the_percentile_interval():
    reps = np.linspace(0.0, 1.0, 1001)
    jack = np.array([0.4, 0.5, 0.6])  # symmetric: no acceleration
    assert resampling.bca_interval(0.5, reps, jack, 0.9) == pytest.approx(
        resampling.percentile_interval(reps, 0.9)
    )


def _report(tmp_path, phases: dict[str, dict], *extra) -> tuple[int, dict | None]:
    specs = []
    for name, tasks in phases.items():
        write_phase(tmp_path / "runs" / name, tasks)
        specs.append(f"{name}={tmp_path / 'runs' / name}")
    out = tmp_path / "report"
    code = report_main(["--phases", *specs, "--out", str(out), "--iters", "2000", *extra])
    report = json.loads((out / "report.json").read_text()) if code == 0 else None
    return code, report


def _gate(tmp_path, phases: dict[str, dict], *extra) -> int:
    specs = []
    for name, tasks in phases.items():
        write_phase(tmp_path / "gate_runs" / name, tasks)
        specs.append(f"{name}={tmp_path / 'gate_runs' / name}")
    return gate_main(["--phases", *specs, "--iters", "2000", *extra])


def _drop(kept: int, lost: int, gained: int, n: int) -> dict:
    """Reference correct on kept + lost docs; candidate correct on kept + gained docs."""
    ref = binary(kept + lost, n)
    cand = [1.0 if i < kept or kept + lost <= i < kept + lost + gained else 0.0 for i in range(n)]
    return {"p0": {"edinet_industry": acc_task(ref)}, "p1": {"edinet_industry": acc_task(cand)}}


@pytest.mark.parametrize(
    ("kept", "lost", "gained", "n", "code"),
    [
        (3, 4, 0, 10, 0),  # 4–0 over 10 documents: exact one-sided p = 1/16
        (0, 1, 0, 10, 0),  # one document
        (10, 30, 5, 57, 1),  # 30–5 over 57: far beyond the 5-point margin
    ],
)
def test_gate_requires_a_significant_drop(tmp_path, kept, lost, gained, n, code, capsys):
    assert _gate(tmp_path, _drop(kept, lost, gained, n)) == code
    assert _gate(tmp_path, _drop(kept, lost, gained, n), "--max-drop", "0") == code
    out = capsys.readouterr().out
    assert ("FAILED (edinet_industry)" in out) == (code == 1)


def test_gain_on_shared_documents_never_fails(tmp_path, capsys):
    # reference: docs 0–99 at 0.60; candidate: docs 50–149 at 0.40, but better on docs 50–99
    ref = [1.0] * 50 + binary(10, 50)
    cand = binary(40, 50) + [0.0] * 50
    phases = {
        "p0": {"edinet_industry": acc_task(ref)},
        "p1": {"edinet_industry": acc_task(cand, doc_ids=list(range(50, 150)))},
    }
    assert _gate(tmp_path, phases) == 0
    out = capsys.readouterr().out
    assert "| edinet_industry | p0 | 0.6000 | 0.4000 | -0.6000 |" in out


def test_missing_benchmark_in_candidate_fails(tmp_path, capsys):
    both = acc_task(binary(5, 10))
    phases = {
        "p0": {"edinet_industry": both, "gsm8k_cot_xml": {**both, "metric": "exact_match"}},
        "p1": {"edinet_industry": both},
    }
    assert _gate(tmp_path, phases) == 1
    assert "| gsm8k_cot_xml |" in (out := capsys.readouterr().out)
    assert "missing in candidate" in out and "FAILED (gsm8k_cot_xml)" in out


@pytest.mark.parametrize("margin", [[], ["--max-drop", "0"]])
def test_identical_candidate_holds(tmp_path, margin, capsys):
    # A copy of the reference: no document changes, so no resample can show a drop.
    labels = [0, 1] * 10
    scores = [0.1 * (i % 7) + 0.3 * y for i, y in enumerate(labels)]
    same = {"edinet_fraud": _auc_task(labels, scores), "edinet_industry": acc_task(binary(6, 20))}
    assert _gate(tmp_path, {"p0": same, "p1": same}, *margin) == 0
    assert "Gate: held" in capsys.readouterr().out


def test_gate_boundary_is_inclusive(tmp_path):
    # point rule: drop 0.25 − 0.125 = 0.125 is exactly representable and equals max_drop
    phases = {
        "p0": {"edinet_industry": acc_task(binary(2, 8))},
        "p1": {"edinet_industry": acc_task(binary(1, 8))},
    }
    point = ["--no-require-significant", "--max-drop"]
    assert _gate(tmp_path, phases, *point, "0.125") == 0
    assert _gate(tmp_path, phases, *point, "0.0625") == 1


def test_doc_hash_mismatch_is_excluded(tmp_path):
    values = binary(6, 10)
    hashes = [f"h{i}" if i < 6 else f"other{i}" for i in range(10)]
    code, report = _report(
        tmp_path,
        {
            "p0": {"edinet_industry": acc_task(values)},
            "p1": {"edinet_industry": acc_task(values, hashes=hashes)},
        },
    )
    assert code == 0
    (test,) = report["benchmarks"]["edinet_industry"]["paired"]
    assert test["n"] == 6


def _auc_task(labels, scores, **extra) -> dict:
    from sklearn.metrics import roc_auc_score

    score = roc_auc_score(labels, scores) if len(set(labels)) > 1 else float("nan")
    values = [[y, s] for y, s in zip(labels, scores, strict=True)]
    return {"metric": "roc_auc", "values": values, "score": score, **extra}


def test_one_class_roc_auc_is_undefined_not_fatal(tmp_path):
    labels = [0, 1] * 10
    scores = [0.1 * (i % 7) for i in range(20)]
    code, report = _report(
        tmp_path,
        {
            "p0": {"edinet_fraud": _auc_task(labels, scores)},
            # p1 scored only p0's negatives: one class, in p1 and on the shared documents
            "p1": {"edinet_fraud": _auc_task([0] * 10, scores[::2], doc_ids=list(range(0, 20, 2)))},
        },
    )
    assert code == 0
    entry = report["benchmarks"]["edinet_fraud"]
    assert entry["scores"]["p1"] is None and "one class" in entry["undefined"]["p1"]
    (test,) = entry["paired"]
    assert test["p_value"] is None and "undefined" in test["method"]


def test_paired_resampling_is_paired(tmp_path):
    """Two phases that differ on one chabsa opinion: a paired interval is tight around the
    difference; resampling the phases independently would spread it over ±0.1."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 300)
    pred = np.where(rng.random(300) < 0.7, gold, 1 - gold)
    changed = pred.copy()
    changed[0] = 1 - changed[0]
    from sklearn.metrics import f1_score

    def task(p):
        values = [[int(g), int(x)] for g, x in zip(gold, p, strict=True)]
        return {"metric": "f1", "values": values, "score": 1.5 * f1_score(gold, p, average="macro")}

    code, report = _report(
        tmp_path, {"p0": {"chabsa": task(pred)}, "p1": {"chabsa": task(changed)}}
    )
    assert code == 0
    (test,) = report["subtasks"]["jp_fin_harness"]["chabsa"]["paired"]
    low, high = test["ci"]
    assert high - low < 0.02
    assert test["method"] == "swap_permutation" and test["p_value"] >= 0.5


def test_report_adjusts_for_multiplicity(tmp_path):
    phases = {f"p{k}": {"edinet_industry": acc_task(binary(20 + 3 * k, 60))} for k in range(4)}
    code, report = _report(tmp_path, phases)
    assert code == 0
    tests = report["benchmarks"]["edinet_industry"]["paired"]
    assert len(tests) == 6
    raw = [t["p_value"] for t in tests]
    assert [t["p_adjusted"] for t in tests] == pytest.approx(hypothesis.benjamini_hochberg(raw))
    assert all(t["significant"] == (t["p_adjusted"] <= 0.05) for t in tests)


def test_clusters_are_resampled_as_units(tmp_path):
    """Ten companies of five identical reports each: 10 independent units, not 50."""
    values = [float(c % 2) for c in range(10) for _ in range(5)]
    docs = [
        {"edinet_code": f"E{c:05d}", "doc_id": f"D{c}-{k}"} for c in range(10) for k in range(5)
    ]
    clustered = acc_task(values, docs=docs, metadata={"cluster_key": "edinet_code"})
    code, report = _report(tmp_path, {"p0": {"edinet_industry": clustered}})
    assert code == 0
    entry = report["benchmarks"]["edinet_industry"]
    assert entry["documents"]["p0"] == {"documents": 50, "clusters": 10, "undefined": 0}
    ci = entry["ci"]["p0"]
    assert ci["method"] == "bca"
    wilson = resampling.wilson_interval(25, 50, 0.95)
    assert ci["high"] - ci["low"] > 1.5 * (wilson[1] - wilson[0])


def test_a_log_that_does_not_reproduce_its_score_is_not_used(tmp_path):
    wrong = {**acc_task(binary(6, 10)), "score": 0.7}  # the log says 0.6
    code, report = _report(
        tmp_path, {"p0": {"edinet_industry": wrong}, "p1": {"edinet_industry": wrong}}
    )
    assert code == 0
    entry = report["benchmarks"]["edinet_industry"]
    assert entry["ci"] is None and entry["paired"] == []
    assert any(
        "gives acc=0.600000 but the results JSON says 0.700000" in n for n in report["notes"]
    )


def test_leaderboard_zero_rule_is_applied_and_said(tmp_path):
    """make_leaderboard.py averages with `if result:`: a subtask scoring exactly 0 is left out."""
    from sklearn.metrics import f1_score

    gold = [0, 1] * 10
    chabsa_values = [[g, g] for g in gold]
    chabsa = {
        "metric": "f1",
        "values": chabsa_values,
        "score": 1.5 * f1_score(gold, gold, average="macro"),
        "docs": [{"source_file": f"E{i // 4}"} for i in range(20)],
        "metadata": {"cluster_key": "source_file"},
    }
    tasks = {
        "chabsa": chabsa,
        "cma_basics": acc_task(binary(5, 10)),
        "cpa_audit": acc_task(binary(0, 10)),
        "fp2": acc_task(binary(4, 10)),
        "security_sales_1": acc_task(binary(3, 10)),
    }
    code, report = _report(tmp_path, {"p0": tasks, "p1": tasks})
    assert code == 0
    entry = report["benchmarks"]["jp_fin_harness"]
    assert entry["scores"]["p0"] == pytest.approx((1.5 + 0.5 + 0.4 + 0.3) / 4)
    assert entry["zero_left_out"]["p0"] == ["cpa_audit"]
    assert any("cpa_audit scored exactly 0 and is left out" in n for n in report["notes"])


def test_undefined_per_sample_scores_are_left_out(tmp_path):
    """edinet_bench_industry logs `acc: null` where the reply named no category; the aggregation
    skips those rows, and so does the report."""
    values = [1.0, None, 0.0, 1.0, None, 1.0]
    task = {"metric": "acc", "values": values, "score": 3 / 4}
    code, report = _report(tmp_path, {"p0": {"edinet_bench_industry": task}})
    assert code == 0
    entry = report["benchmarks"]["edinet_bench_industry"]
    assert entry["documents"]["p0"] == {"documents": 4, "clusters": None, "undefined": 2}
    assert entry["ci"]["p0"]["method"] == "wilson"
