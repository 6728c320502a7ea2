"""compass-report on four hand-made phases: every number below was worked out by hand."""

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from compass_eval.analysis.report_cli import main

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"
PHASES = ["p0", "p1", "p2", "p3"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    assert (
        main(["--results", str(RUNS), "--phases", *PHASES, "--out", str(out), "--iters", "200"])
        == 0
    )
    return json.loads((out / "report.json").read_text()), out


def _approx(d):
    return {k: (None if v is None else pytest.approx(v, abs=1e-12)) for k, v in d.items()}


# benchmark: scores, best phase, forgetting, delta vs p0, retention — by hand from the fixtures
EXPECTED = {
    "gsm8k": (
        [0.40, 0.30, 0.50, 0.45],
        "p2",
        [0.0, 0.10, 0.0, 0.05],
        [0.0, -0.10, 0.10, 0.05],
        [1.0, 0.75, 1.0, 0.9],
    ),
    "edinet_fraud": (
        [0.50, 0.60, 0.55, 0.70],
        "p3",
        [0.0, 0.0, 0.05, 0.0],
        [0.0, 0.10, 0.05, 0.20],
        [1.0, 1.0, 0.55 / 0.60, 1.0],
    ),
    "edinet_earnings": (
        [0.52, 0.48, 0.56, 0.54],
        "p2",
        [0.0, 0.04, 0.0, 0.02],
        [0.0, -0.04, 0.04, 0.02],
        [1.0, 0.48 / 0.52, 1.0, 0.54 / 0.56],
    ),
    "edinet_industry": (
        [0.10, 0.20, 0.25, 0.05],
        "p2",
        [0.0, 0.0, 0.0, 0.20],
        [0.0, 0.10, 0.15, -0.05],
        [1.0, 1.0, 1.0, 0.2],
    ),
    # (0.5+0.3+0.2+0.4+0.6)/5, (0.6+0.4+0.3+0.4+0.55)/5, (0.55+0.35+0.25+0.3+0.5)/5, (0.7+0.4+0.3+0.5+0.6)/5
    "jp_fin_harness": (
        [0.40, 0.45, 0.39, 0.50],
        "p3",
        [0.0, 0.0, 0.06, 0.0],
        [0.0, 0.05, -0.01, 0.10],
        [1.0, 1.0, 0.39 / 0.45, 1.0],
    ),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_per_phase_table_and_trajectory(report, name):
    scores, best, forgetting, delta, retention = EXPECTED[name]
    entry = report[0]["benchmarks"][name]
    assert entry["scores"] == _approx(dict(zip(PHASES, scores, strict=True)))
    assert entry["best_phase"] == best
    assert entry["forgetting"] == _approx(dict(zip(PHASES, forgetting, strict=True)))
    assert entry["delta_vs_p0"] == _approx(dict(zip(PHASES, delta, strict=True)))
    assert entry["retention"] == _approx(dict(zip(PHASES, retention, strict=True)))
    assert entry["complete"] is True


def test_means_over_benchmarks_leave_out_partial_ones(report):
    r = report[0]
    # complete benchmarks only (gsm8k_cot_xml, p0 and p2 only, is left out), and accuracy
    # points are never averaged with ROC-AUC differences: one mean per unit family
    percent, unscaled = r["means"]["percent"], r["means"]["unscaled"]
    assert percent["benchmarks"] == ["gsm8k", "edinet_industry", "jp_fin_harness"]
    assert unscaled["benchmarks"] == ["edinet_earnings", "edinet_fraud"]
    assert percent["forgetting"] == _approx(
        {"p0": 0.0, "p1": 0.10 / 3, "p2": 0.06 / 3, "p3": 0.25 / 3}
    )
    assert unscaled["forgetting"] == _approx(
        {"p0": 0.0, "p1": 0.04 / 2, "p2": 0.05 / 2, "p3": 0.02 / 2}
    )
    assert percent["delta_vs_p0"] == _approx(
        {"p0": 0.0, "p1": 0.05 / 3, "p2": 0.24 / 3, "p3": 0.10 / 3}
    )
    assert unscaled["delta_vs_p0"] == _approx(
        {"p0": 0.0, "p1": 0.06 / 2, "p2": 0.09 / 2, "p3": 0.22 / 2}
    )
    assert percent["retention"] == _approx(
        {
            "p0": 1.0,
            "p1": (0.75 + 1 + 1) / 3,
            "p2": (1 + 1 + 0.39 / 0.45) / 3,
            "p3": (0.9 + 0.2 + 1) / 3,
        }
    )
    assert unscaled["retention"] == _approx(
        {
            "p0": 1.0,
            "p1": (0.48 / 0.52 + 1) / 2,
            "p2": (1 + 0.55 / 0.60) / 2,
            "p3": (0.54 / 0.56 + 1) / 2,
        }
    )
    cot = r["benchmarks"]["gsm8k_cot_xml"]
    assert cot["scores"] == {"p0": 0.20, "p1": None, "p2": 0.30, "p3": None}
    assert cot["complete"] is False
    assert cot["forgetting"] == {"p0": 0.0, "p1": None, "p2": 0.0, "p3": None}
    assert any("gsm8k_cot_xml" in n and "left out" in n for n in r["notes"])


def test_strict_match_filter_and_newest_run_win(report):
    # p0 holds an older run with gsm8k 0.11, and flexible-extract is 0.99 everywhere
    assert report[0]["benchmarks"]["gsm8k"]["scores"]["p0"] == 0.40


def test_per_subtask_table_with_average(report):
    sub = report[0]["subtasks"]["jp_fin_harness"]
    assert list(sub) == ["chabsa", "cma_basics", "cpa_audit", "fp2", "security_sales_1"]
    assert sub["chabsa"]["metric"] == "f1"
    assert sub["cma_basics"]["scores"] == {"p0": 0.30, "p1": 0.40, "p2": 0.35, "p3": 0.40}
    # p1 and p3 share the top score: a tie, not a best phase
    assert sub["cma_basics"]["best_phase"] is None
    assert sub["cma_basics"]["tied_best"] == ["p1", "p3"]
    assert sub["fp2"]["best_phase"] == "p3" and sub["fp2"]["tied_best"] == []
    assert sub["security_sales_1"]["forgetting"] == _approx(
        {"p0": 0.0, "p1": 0.05, "p2": 0.10, "p3": 0.0}
    )
    assert sub["fp2"]["forgetting"] == _approx({"p0": 0.0, "p1": 0.0, "p2": 0.10, "p3": 0.0})
    averages = report[0]["subtask_averages"]["jp_fin_harness"]
    assert averages == _approx({"p0": 0.40, "p1": 0.45, "p2": 0.39, "p3": 0.50})
    # ROC-AUC and accuracy are not averaged together
    assert report[0]["subtask_averages"]["edinet"] is None


def test_chance_levels(report):
    b = report[0]["benchmarks"]
    assert b["edinet_fraud"]["chance"] == 0.5
    assert b["edinet_industry"]["chance"] == 1 / 16
    assert b["gsm8k"]["chance"] == 0.0
    assert any(
        "edinet_industry" in s and "below chance" in s and "p3" in s for s in report[0]["analysis"]
    )


def test_intervals_only_where_sample_logs_exist(report):
    b = report[0]["benchmarks"]
    assert b["gsm8k"]["ci"] is None
    ci = b["edinet_industry"]["ci"]
    for phase, score in b["edinet_industry"]["scores"].items():
        assert ci[phase]["low"] <= score <= ci[phase]["high"]
        assert ci[phase]["method"] == "wilson"
    # p3 answered 2 of 40 correctly: Wilson's interval, as scipy computes it independently
    expected = binomtest(2, 40).proportion_ci(confidence_level=0.95, method="wilson")
    assert (ci["p3"]["low"], ci["p3"]["high"]) == pytest.approx(
        (expected.low, expected.high), abs=1e-12
    )


def test_paired_tests_label_noise(report):
    paired = {(t["a"], t["b"]): t for t in report[0]["benchmarks"]["edinet_industry"]["paired"]}
    assert set(paired) == {(a, b) for i, a in enumerate(PHASES) for b in PHASES[i + 1 :]}
    # p2 -> p3: 8 of 40 documents lost, none gained
    assert paired[("p2", "p3")]["delta"] == pytest.approx(-0.20)
    assert paired[("p2", "p3")]["significant"] is True
    assert paired[("p2", "p3")]["n"] == 40


def test_all_outputs_written(report):
    out = report[1]
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == sorted(
        ["report.json", "report.md", "report.html", "heatmap_delta.png"]
        + [f"trajectory_{b}.png" for b in report[0]["benchmarks"]]
    )
    md = (out / "report.md").read_text()
    # no sample logs behind these rows: n unknown, no marks
    assert "| edinet_fraud | roc_auc | — | 0.500 | 0.600 | 0.550 | **0.700** |" in md
    assert "| gsm8k | exact_match | — | 40.00% | 30.00% | **50.00%** | 45.00% |" in md
    assert "| cma_basics | acc | — | 30.00% | =40.00% | 35.00% | =40.00% |" in md
    assert "| **Average** | | | 40.00% | 45.00% | 39.00% | 50.00% |" in md
    # sources as short links
    assert (
        "[pfnet-research/japanese-lm-fin-harness · README.md](https://github.com/pfnet-research/"
        "japanese-lm-fin-harness/blob/2811c9cab3e4b376377461da483b4ba1c5bd77e3/README.md)" in md
    )
