"""`compass-eval`: all phases through lm-eval, resumable, skipping what is already done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clitools import run_cli
from lm_eval.defaults import DEFAULT_OTHER_SEED, DEFAULT_RANDOM_SEED

from compass_eval.phase_eval import _parser, headline_scores
from compass_model.assemble import build_tiny
from compass_model.checkpoint import save_checkpoint


def test_evaluates_each_phase_once_and_refuses_a_missing_checkpoint(tmp_path, tiny_checkpoint):
    checkpoints = tmp_path / "checkpoints"
    model, processor = build_tiny(seed=7)
    save_checkpoint(model, processor, checkpoints / "p1", {"phase": "p1", "parent": "p0"})
    (checkpoints / "p0").symlink_to(tiny_checkpoint)
    command = [
        "compass-eval",
        "--checkpoints",
        str(checkpoints),
        "--phases",
        "p0",
        "p1",
        "--tasks",
        "compass_smoke_text",
        "--limit",
        "2",
        "--out",
        str(tmp_path / "results"),
    ]

    first = run_cli(command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("evaluated") == 2
    for phase in ("p0", "p1"):
        (results,) = (tmp_path / "results" / phase).rglob("results_*.json")
        config = json.loads(results.read_text())["config"]
        assert config["compass_phase"] == phase
        # lm-eval's own seeds, so the few-shot contexts are those of a plain `lm_eval` run
        assert config["fewshot_seed"] == config["numpy_seed"] == DEFAULT_OTHER_SEED
        assert config["random_seed"] == DEFAULT_RANDOM_SEED
        marker = json.loads((tmp_path / "results" / phase / "compass_eval.json").read_text())
        assert marker["settings"]["seeds"] == [DEFAULT_RANDOM_SEED, *[DEFAULT_OTHER_SEED] * 3]
        assert list((tmp_path / "results" / phase).rglob("samples_compass_smoke_text_*.jsonl"))

    again = run_cli(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped") == 2

    changed = run_cli([*command[:-2], "--limit", "3", *command[-2:]], cwd=tmp_path)
    assert changed.stdout.count("evaluated") == 2, changed.stderr[-2000:]

    # Other data under the same settings is not "already evaluated" either.
    other_data = tmp_path / "other-data"
    (other_data / "gsm8k").mkdir(parents=True)
    (other_data / "gsm8k" / "test.jsonl").write_text("", encoding="utf-8")
    moved = run_cli(command, cwd=tmp_path, COMPASS_DATA_DIR=str(other_data))
    assert moved.stdout.count("evaluated") == 2, moved.stderr[-2000:]
    (other_data / "gsm8k" / "test.jsonl").write_text("{}\n", encoding="utf-8")
    edited = run_cli(command, cwd=tmp_path, COMPASS_DATA_DIR=str(other_data))
    assert edited.stdout.count("evaluated") == 2, edited.stderr[-2000:]

    missing = run_cli([*command[:4], "p0", "p2", *command[6:]], cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("compass-eval: error:")
    assert "p2" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("given", "seeds"), [("7", (7, 7, 7, 7)), ("0,1,2,3", (0, 1, 2, 3)), ("-1", (-1,) * 4)]
)
def test_seed_takes_one_value_for_all_four_or_four_values_as_lm_eval_does(given, seeds):
    required = ["--checkpoints", "c", "--phases", "p0", "--out", "o"]
    assert _parser().parse_args([*required, "--seed", given]).seeds == seeds


@pytest.mark.parametrize("given", ["1,2", "a", "1,2,3,4,5", ""])
def test_a_malformed_seed_is_a_usage_error(given, capsys):
    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(
            ["--checkpoints", "c", "--phases", "p0", "--out", "o", "--seed", given]
        )
    assert stopped.value.code == 2 and "--seed" in capsys.readouterr().err


def test_a_second_run_into_the_same_results_stops_with_one_line(tmp_path):
    """While one compass-eval holds `--out`, another stops at once instead of evaluating twice."""
    import subprocess
    import sys

    out = tmp_path / "results"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from compass_model.atomic import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        args = ["compass-eval", "--checkpoints", str(tmp_path / "ckpt"), "--phases", "p0"]
        run = run_cli([*args, "--tasks", "compass_smoke", "--out", str(out)], cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 2
    assert "another process is writing it" in run.stderr and run.stderr.count("\n") == 1


def test_headline_scores_are_the_reports_benchmarks_in_its_units():
    runs = Path(__file__).parent / "fixtures" / "analysis" / "runs"
    line = headline_scores("p0", runs / "p0")
    (results,) = (runs / "p0").rglob("compass-ckpt/results_*.json")
    fraud = json.loads(results.read_text())["results"]["edinet_fraud"]["roc_auc,none"]
    assert f"edinet_fraud {fraud:.3f}" in line  # ROC-AUC unscaled
    assert "gsm8k_cot_xml " in line and line.count("%") >= 3  # accuracies in %
