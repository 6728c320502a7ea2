"""The JP Fin Harness leaderboard rule on a model's published result files."""

import json
import os
from pathlib import Path

import pytest

from compass_eval.analysis.benchmarks import leaderboard_score, split_variant
from compass_eval.analysis.report_cli import main
from compass_eval.analysis.results import load_phase

DATA = Path(
    os.environ.get("COMPASS_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "data")
)
EXAMPLE = DATA / "jp_fin_harness" / "leaderboard_example" / "Llama-2-7b-hf"
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"no {EXAMPLE}")


@needs_example
def test_leaderboard_rule_gives_the_published_score():
    best = leaderboard_score("jp_fin_harness", load_phase("llama2", EXAMPLE).tasks)
    assert best.variant == "1.0-0.2"
    # chabsa f1 0.7197, cma 0.3158, cpa 0.1382, fp2 0.2674, ss1 0.4035 -> 36.89
    assert round(100 * best.value, 2) == 36.89
    assert [p.task.name for p in best.parts] == [
        "chabsa-1.0-0.2",
        "cma_basics-1.0-0.2",
        "cpa_audit-1.0-0.2",
        "fp2-1.0-0.2",
        "security_sales_1-1.0-0.2",
    ]


@needs_example
def test_report_names_the_variant(tmp_path):
    out = tmp_path / "out"
    assert main(["--phases", f"p0={EXAMPLE}", f"p1={EXAMPLE}", "--out", str(out)]) == 0
    entry = json.loads((out / "report.json").read_text())["benchmarks"]["jp_fin_harness"]
    assert entry["variant"] == "1.0-0.2"
    assert round(100 * entry["scores"]["p0"], 2) == 36.89
    assert "p0: 1.0-0.2" in (out / "report.md").read_text()


@needs_example
def test_variants_without_chabsa_take_its_parent_prompt():
    tasks = load_phase("llama2", EXAMPLE).tasks
    only_212 = {n: t for n, t in tasks.items() if n.endswith("-1.0-0.2.1") or n == "chabsa-1.0-0.2"}
    best = leaderboard_score("jp_fin_harness", only_212)
    assert best.variant == "1.0-0.2.1"
    assert best.parts[0].task.name == "chabsa-1.0-0.2"
    # chabsa 0.7197 (from 1.0-0.2), cma 0.2105, cpa 0.1281, fp2 0.2421, ss1 0.4912
    expected = (
        0.7196955278490051
        + 0.21052631578947367
        + 0.12814070351758794
        + 0.24210526315789474
        + 0.49122807017543857
    ) / 5
    assert best.value == pytest.approx(expected, abs=1e-15)


def test_variant_names():
    assert split_variant("cma_basics-1.0-0.2") == ("cma_basics", "1.0-0.2")
    assert split_variant("cpa_audit-1.0-0.1.2") == ("cpa_audit", "1.0-0.1.2")
    assert split_variant("security_sales_1") == ("security_sales_1", "default")
