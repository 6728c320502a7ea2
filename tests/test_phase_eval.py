"""`compass-eval`: all phases through lm-eval, resumable, skipping what is already done."""

from __future__ import annotations

import json

from clitools import run_cli

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
