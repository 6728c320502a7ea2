"""The report as a reviewer reads it: n per benchmark, run settings, significance marks, units,
every phase pair, the gate's verdict, the documents that flipped and each phase's provenance.

Four hand-made phases, written as lm-eval writes them (results JSON + sample logs), with the
settings and checkpoint manifests a real run records; every expected figure is worked out by hand
from the values below.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from analysis_logs import acc_task, binary, write_phase
from sklearn.metrics import roc_auc_score

from compass_eval.analysis.flips import flipped
from compass_eval.analysis.plots import heat_panels, heatmap_png, trajectory_png
from compass_eval.analysis.report_cli import main
from compass_eval.analysis.samples import SampleLog

PHASES = ["p0", "p1", "p2", "p3"]
# edinet_industry: 60 documents of 20 companies (3 each); correct on the first k documents
INDUSTRY_CORRECT = {"p0": 10, "p1": 40, "p2": 40, "p3": 12}
# edinet_fraud: 40 documents, label 1 on the odd ones; p3 ranks them perfectly
FRAUD_LABELS = [float(i % 2) for i in range(40)]
FRAUD_PROBS = {
    "p0": [0.5 + 0.01 * ((7 * i) % 11 - 5) for i in range(40)],
    "p1": [0.5 + 0.01 * ((5 * i) % 13 - 6) for i in range(40)],
    "p2": [0.6 if i % 2 else 0.4 if i % 4 else 0.7 for i in range(40)],
    "p3": [0.9 if i % 2 else 0.1 for i in range(40)],
}
MANIFEST_STAGES = {
    "p0": [],
    "p1": [{"name": "s1", "recipe": {"lr": 1e-3}, "steps": 20, "final_loss": 6.5}],
    "p2": [{"name": "s1", "recipe": {"lr": 3e-3}, "steps": 2500, "final_loss": 0.00125}],
    "p3": [{"name": "s1", "recipe": {"lr": 1e-4}, "steps": 1000, "final_loss": 0.0012}],
}


def _fraud_task(phase: str) -> dict:
    values = [[label, p] for label, p in zip(FRAUD_LABELS, FRAUD_PROBS[phase], strict=True)]
    score = roc_auc_score(FRAUD_LABELS, FRAUD_PROBS[phase])
    return {"metric": "roc_auc", "values": values, "score": score}


def _write_run(root: Path, limit: int | None = None, versions: dict | None = None) -> Path:
    """Results and sample logs per phase, and a checkpoint folder with its manifest."""
    for k, phase in enumerate(PHASES):
        checkpoint = root / "checkpoints" / phase
        checkpoint.mkdir(parents=True)
        manifest = {
            "phase": phase,
            "parent": PHASES[k - 1] if k else None,
            "recipe": "demo",
            "model": {"preset": "tiny"},
            "seed": 0,
            "mixed_precision": "fp32",
            "stages": MANIFEST_STAGES[phase],
        }
        (checkpoint / "compass_phase.json").write_text(json.dumps(manifest))
        for stage in MANIFEST_STAGES[phase]:
            (checkpoint / f"loss_{stage['name']}.png").write_bytes(b"\x89PNG")
        industry = acc_task(
            binary(INDUSTRY_CORRECT[phase], 60),
            docs=[{"edinet_code": f"E{i // 3:02d}"} for i in range(60)],
            metadata={"cluster_key": "edinet_code", "data_fingerprint": "sha256:" + "ab" * 32},
        )
        path = write_phase(
            root / "results" / phase,
            {
                "edinet_industry": industry,
                "edinet_fraud": _fraud_task(phase),
                "gsm8k_cot_xml": {"metric": "exact_match", "values": [0.0] * 30, "score": 0.0},
            },
        )
        data = json.loads(path.read_text())
        data["config"] = {
            "model": "compass",
            "model_args": f"pretrained={checkpoint},phase={phase}",
            "compass_pretrained": str(checkpoint),
            "limit": limit,
        }
        data["lm_eval_version"] = (versions or {}).get(phase, "0.4.13")
        data["chat_template"] = "{{ messages }}"
        data["chat_template_sha"] = (
            "6d69ab3f7c7e3be4456d06998362daceb51b55965334bf27038774a7b8209366"
        )
        data["n-samples"] = {
            name: {"original": 100 if limit else n, "effective": n}
            for name, n in (("edinet_industry", 60), ("edinet_fraud", 40), ("gsm8k_cot_xml", 30))
        }
        path.write_text(json.dumps(data))
    return root


def _policy(root: Path, text: str) -> Path:
    path = root / "gate.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = _write_run(tmp_path_factory.mktemp("run"), versions={"p3": "0.4.14"})
    policy = _policy(root, "max_drop: 0.05\nagainst: peak\nrequire_significant: true\n")
    out = root / "report"
    argv = ["--results", str(root / "results"), "--phases", *PHASES, "--out", str(out)]
    assert main([*argv, "--iters", "500", "--policy", str(policy)]) == 0
    report = json.loads((out / "report.json").read_text())
    return report, (out / "report.md").read_text(), (out / "report.html").read_text()


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def _rows(table: str, first_cell: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith(f"| {first_cell} |")
    ]


def test_main_table_gives_n_documents_and_clusters(run):
    _, md, html = run
    table = _section(md, "Scores per phase")
    assert table.splitlines()[2].startswith("| benchmark | metric | n |")
    (industry,) = _rows(table, "edinet_industry")
    assert industry[2] == "60 (20 clusters)"
    (fraud,) = _rows(table, "edinet_fraud")
    assert fraud[2] == "40"
    assert "<td>60 (20 clusters)</td>" in html


def test_significant_changes_against_the_first_phase_are_marked(run):
    report, md, html = run
    (industry,) = _rows(_section(md, "Scores per phase"), "edinet_industry")
    # 10 → 40 of 60 correct: 30 discordant documents, all gains; 10 → 12 is noise
    # p1 and p2 tie at the top: "=" marks the tie, no phase is bold
    assert industry[4].startswith("=66.67% ▲") and industry[5].startswith("=66.67% ▲")
    assert "▲" not in industry[6] and "▼" not in industry[6]
    (fraud,) = _rows(_section(md, "Scores per phase"), "edinet_fraud")
    assert "▲" in fraud[6]  # p3 ranks every document right
    # the Δ table carries the same marks, the HTML a tooltip with the BH-adjusted p
    (delta,) = _rows(_section(md, "Forgetting, Δ vs p0, retention"), "edinet_industry")
    assert "+50.00 pt ▲" in delta[2] and "▲" not in delta[4]
    assert re.search(r'class="mark gain" title="\+50\.00 pt vs p0, BH-adjusted p 0\.\d{3}"', html)
    tests = report["benchmarks"]["edinet_industry"]["paired"]
    assert all(t["significant"] == (t["p_adjusted"] <= 0.05) for t in tests)


def test_p_values_never_print_as_zero(run):
    _, md, _ = run
    rows = [r for r in _section(md, "Paired tests (same documents in both phases)").splitlines()]
    cells = [r.strip("|").split("|") for r in rows if " → " in r]
    assert cells and all(c[4].strip() != "0.000" and c[5].strip() != "0.000" for c in cells)
    assert any(c[5].strip() == "< 0.001" for c in cells)


def test_every_phase_pair_is_in_markdown_and_html(run):
    report, md, html = run
    table = _section(md, "Paired tests (same documents in both phases)")
    pairs = [f"{a} → {b}" for i, a in enumerate(PHASES) for b in PHASES[i + 1 :]]
    for name in ("edinet_industry", "edinet_fraud", "gsm8k_cot_xml"):
        assert len(report["benchmarks"][name]["paired"]) == 6
        assert [r[1] for r in _rows(table, name)] == pairs, name
        for pair in pairs:
            assert f"<tr><td>{name}</td><td>{pair}</td>" in html


def test_units_and_no_mean_across_metric_types(run):
    report, md, _ = run
    means = report["means"]
    assert means["percent"]["benchmarks"] == ["gsm8k_cot_xml", "edinet_industry"]
    assert means["unscaled"]["benchmarks"] == ["edinet_fraud"]
    # Δ vs p0 at p1: (0 + 30/60) / 2 accuracy points; ROC-AUC on its own
    assert means["percent"]["delta_vs_p0"]["p1"] == pytest.approx(0.25)
    fraud = report["benchmarks"]["edinet_fraud"]["delta_vs_p0"]
    assert means["unscaled"]["delta_vs_p0"] == pytest.approx(fraud)
    table = _section(md, "Forgetting, Δ vs p0, retention")
    (pt_mean,) = [line for line in table.splitlines() if line.startswith("| **Mean (accuracy")]
    (auc_mean,) = [line for line in table.splitlines() if line.startswith("| **Mean (ROC-AUC")]
    assert "edinet_fraud" not in pt_mean and "+25.00 pt" in pt_mean
    assert " pt" not in auc_mean and "edinet_industry" not in auc_mean
    (fraud_row,) = _rows(_section(md, "Scores per phase"), "edinet_fraud")
    assert re.fullmatch(r"(\*\*)?\d\.\d{3}(\*\*)?( ▲)? \[\d\.\d{3}, \d\.\d{3}\]", fraud_row[6])
    assert "%" not in fraud_row[6]


def test_all_zero_row_is_not_called_a_peak(run):
    report, md, _ = run
    entry = report["benchmarks"]["gsm8k_cot_xml"]
    assert entry["best_phase"] is None and entry["tied_best"] == []
    (row,) = _rows(_section(md, "Scores per phase"), "gsm8k_cot_xml")
    assert "**" not in "|".join(row)
    assert any(
        s.startswith("Best phase: gsm8k_cot_xml: 0.00% in every phase; no best")
        for s in report["analysis"]
    )
    assert not any("gsm8k_cot_xml: best at" in s for s in report["analysis"])


def test_settings_block_shows_each_phase_and_flags_mismatches(run):
    _, md, html = run
    block = _section(md, "Run settings")
    assert "Settings marked ⚠ differ between phases." in block
    (version,) = _rows(block, "⚠ lm-eval version")
    assert version[1:] == ["0.4.13", "0.4.13", "0.4.13", "0.4.14"]
    (chat,) = _rows(block, "chat template")
    assert chat[1:] == ["applied (sha 6d69ab3f7c7e)"] * 4
    (limit,) = _rows(block, "limit")
    assert limit[1:] == ["none (whole split)"] * 4
    (checkpoint,) = _rows(block, "checkpoint")  # differs by design: not flagged
    assert checkpoint[4].endswith("checkpoints/p3")
    (industry,) = _rows(block, "edinet_industry")
    assert industry[1:] == ["0", "1.0", "abababababab", "60"]
    assert '<tr class="differs"><td>lm-eval version</td>' in html
    assert "Partial evaluation" not in md


def test_gate_verdict_section(run):
    report, md, html = run
    gate = _section(md, "Gate verdict: FAILED (edinet_industry)")
    (row,) = _rows(gate, "edinet_industry")
    # p3 against p1 (the first of the tied peaks): 40 → 12 of 60 correct, 28 documents lost
    assert row[1:5] == ["p1", "66.67%", "20.00%", "46.67 pt"]
    assert row[5] == "5.00 pt" and row[-1] == "**regression**"
    (fraud,) = _rows(gate, "edinet_fraud")
    assert fraud[-1] == "held" and fraud[4].endswith("gain")
    assert report["gate"]["failed"] is True and report["gate"]["candidate"] == "p3"
    assert 'id="gate"' in html and 'class="fail">FAILED (edinet_industry)' in html


def test_flipped_documents_by_doc_id(run):
    report, md, html = run
    section = _section(md, "What changed: documents that flipped")
    later = section.split("**p2 → p3**", 1)[1]
    (industry,) = _rows(later, "edinet_industry")
    # correct on docs 0–39 in p2, 0–11 in p3: docs 12–39 went wrong, none right
    assert industry[1:] == ["60", "28", "12, 13, 14, 15, 16", "0", "—"]
    earlier = section.split("**p0 → p1**", 1)[1].split("**p1 → p2**", 1)[0]
    (gained,) = _rows(earlier, "edinet_industry")
    assert gained[1:] == ["60", "0", "—", "30", "10, 11, 12, 13, 14"]
    middle = section.split("**p1 → p2**", 1)[1].split("**p2 → p3**", 1)[0]
    assert _rows(middle, "edinet_industry") == []  # p1 and p2 answer alike
    assert 'id="flips"' in html


def test_provenance_from_each_checkpoint_manifest(run):
    report, md, _ = run
    p2 = report["provenance"]["p2"]
    assert p2["parent"] == "p1" and p2["stages"][0]["steps"] == 2500
    assert p2["recipe_digest"] != report["provenance"]["p3"]["recipe_digest"]
    (row,) = _rows(_section(md, "Provenance (from each checkpoint's compass_phase.json)"), "p2")
    assert row[1:3] == ["p1", "demo"]
    assert row[4] == "s1: 2500 steps, final loss 0.00125"
    assert row[5].startswith("[loss_s1.png](file://")


def test_a_limited_run_is_marked_partial(tmp_path):
    root = _write_run(tmp_path, limit=60)
    out = tmp_path / "report"
    argv = ["--results", str(root / "results"), "--phases", *PHASES, "--out", str(out)]
    assert main([*argv, "--iters", "200"]) == 0
    md = (out / "report.md").read_text()
    assert "> **Partial evaluation — not the whole benchmark:**" in md
    assert "> - p0: evaluated with --limit 60; edinet_fraud scored 40 of 100 documents;" in md
    header = _section(md, "Scores per phase").splitlines()[2]
    assert "| p0 (partial) | p1 (partial) |" in header
    (industry,) = _rows(_section(md, "Run settings"), "edinet_industry")
    assert industry[4] == "60 of 100"


def test_a_bad_policy_is_refused_before_anything_is_written(tmp_path, capsys):
    root = _write_run(tmp_path)
    policy = _policy(root, "max_drop: 0.05\nthreshold: 3\n")
    out = tmp_path / "report"
    argv = ["--results", str(root / "results"), "--phases", *PHASES, "--out", str(out)]
    assert main([*argv, "--iters", "200", "--policy", str(policy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "threshold" in err and "Traceback" not in err
    assert not out.exists()


def _log(ids: list[int], hashes: list[str], values: list) -> SampleLog:
    return SampleLog(np.array(ids), np.array([h.encode() for h in hashes]), np.array(values, float))


def test_flips_pair_documents_by_id_and_content_hash():
    a = _log([0, 1, 2, 3], ["h0", "h1", "h2", "h3"], [1, 1, 0, 0])
    b = _log([0, 1, 2, 3], ["h0", "changed", "h2", "h3"], [0, 0, 1, 1])
    found = flipped(a, b, "acc")
    # document 1 changed content between the phases: not the same document, not a flip
    assert found == {"shared": 3, "lost": 1, "gained": 2, "lost_ids": [0], "gained_ids": [2, 3]}


def test_flips_of_roc_auc_pairs_threshold_at_one_half():
    a = _log([0, 1, 2], ["h0", "h1", "h2"], [[1, 0.9], [0, 0.2], [1, 0.4]])
    b = _log([0, 1, 2], ["h0", "h1", "h2"], [[1, 0.3], [0, 0.7], [1, 0.5]])
    found = flipped(a, b, "roc_auc")
    assert (found["lost_ids"], found["gained_ids"]) == ([0, 1], [2])


def test_plots_draw_the_significance_marks(run):
    report = run[0]
    entry = report["benchmarks"]["edinet_industry"]
    quiet = {**entry, "paired": [{**t, "significant": False} for t in entry["paired"]]}
    assert trajectory_png("x", entry, PHASES, 0.95) != trajectory_png("x", quiet, PHASES, 0.95)
    calm = {**report, "benchmarks": {**report["benchmarks"], "edinet_industry": quiet}}
    calm["subtasks"] = {}
    assert heatmap_png({**report, "subtasks": {}}) != heatmap_png(calm)


def test_heat_map_gives_each_unit_family_its_own_colour_scale(run):
    panels = heat_panels(run[0])
    assert {name: list(rows) for name, rows in panels.items()} == {
        "percent": ["gsm8k_cot_xml", "edinet_industry"],
        "unscaled": ["edinet_fraud"],
    }


def test_an_average_of_roc_auc_subtasks_stays_in_roc_auc_units(tmp_path):
    for phase in ("p0", "p1"):
        write_phase(
            tmp_path / "results" / phase,
            {"edinet_fraud": _fraud_task(phase), "edinet_earnings": _fraud_task("p3")},
        )
    out = tmp_path / "report"
    argv = ["--results", str(tmp_path / "results"), "--phases", "p0", "p1", "--out", str(out)]
    assert main([*argv, "--iters", "200"]) == 0
    (average,) = _rows(
        _section((out / "report.md").read_text(), "Subtasks of edinet"), "**Average**"
    )
    # (p0's fraud AUC + 1.0) / 2, shown as 0.xxx, never as a percentage
    fraud = roc_auc_score(FRAUD_LABELS, FRAUD_PROBS["p0"])
    assert average[3] == f"{(fraud + 1.0) / 2:.3f}"


def test_a_broken_or_odd_manifest_only_drops_provenance(tmp_path):
    root = _write_run(tmp_path)
    (root / "checkpoints" / "p1" / "compass_phase.json").write_text("{not json")
    manifest = root / "checkpoints" / "p2" / "compass_phase.json"
    manifest.write_text(manifest.read_text().replace("0.00125", "NaN"))
    out = tmp_path / "report"
    argv = ["--results", str(root / "results"), "--phases", *PHASES, "--out", str(out)]
    assert main([*argv, "--iters", "200"]) == 0
    provenance = json.loads((out / "report.json").read_text())["provenance"]
    assert provenance["p1"] is None
    assert provenance["p2"]["stages"][0] == {
        "name": "s1",
        "steps": 2500,
        "final_loss": None,
        "adapter": None,
    }
