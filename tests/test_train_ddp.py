"""`accelerate launch` with two CPU processes (gloo) trains a stage and saves one checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from compass_train.cli import main

REPO = Path(__file__).resolve().parents[1]
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"

pytestmark = pytest.mark.slow


def test_two_process_ddp_trains_p1_and_saves_it(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    assert main(["run", str(CHAIN), "--out", str(out), "--only", "p0"]) == 0
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [
            accelerate, "launch",
            "--config_file", str(REPO / "recipes" / "accelerate" / "ddp.yaml"),
            "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0",
            "-m", "compass_train", "run", str(CHAIN), "--out", str(out), "--only", "p1",
            "--set", "stages.max_steps=2",
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    stage = json.loads((out / "p1" / "compass_phase.json").read_text())["stages"][0]
    assert stage["processes"] == 2 and stage["steps"] == 2
    before, after = (
        load_file(out / "p0" / "model.safetensors"),
        load_file(out / "p1" / "model.safetensors"),
    )
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("multi_modal_projector" in k for k in changed)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["p0", "p1"]
