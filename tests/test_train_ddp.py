"""`accelerate launch` with two CPU processes (gloo) trains every stage of the demo recipe: the
vision tower with text-only records in its batches (P1-S2), QLoRA (P2), text LoRA and the
projector (P3), each saved once as a phase checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_two_process_ddp_runs_every_phase_of_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [
            accelerate, "launch",
            "--config_file", str(REPO / "recipes" / "accelerate" / "ddp.yaml"),
            "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0",
            "-m", "compass_train", "run", str(REPO / "recipes" / "demo.yaml"), "--out", str(out),
            "--set", "stages.max_steps=3",
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["p0", "p1", "p2", "p3"]
    stages = {}
    for phase in ("p1", "p2", "p3"):
        manifest = json.loads((out / phase / "compass_phase.json").read_text())
        stages |= {f"{phase}/{stage['name']}": stage for stage in manifest["stages"]}
    assert sorted(stages) == ["p1/s1", "p1/s2", "p2/s1", "p3/s1", "p3/s2"]
    assert all(s["processes"] == 2 and s["steps"] == 3 for s in stages.values())
    assert stages["p2/s1"]["adapter"]["type"] == "qlora"
    before, after = (load_file(out / p / "model.safetensors") for p in ("p0", "p1"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("vision_tower.") for k in changed)  # P1-S2 trained the tower
