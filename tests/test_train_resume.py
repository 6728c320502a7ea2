"""Kill a training run with SIGKILL in the middle of a stage, then `--resume`: the final weights
equal those of an uninterrupted run, and the killed run left nothing that looks like a phase."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from compass_train.cli import main

REPO = Path(__file__).resolve().parents[1]
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"
# p3's LoRA stage (with dropout, so the RNG must be restored too) runs long enough to be killed.
SETTINGS = ["--set", "p3.s1.max_steps=20", "--set", "p3.s1.save_every=3"]

pytestmark = pytest.mark.slow


def _run(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "compass_train", "run", str(CHAIN), "--out", str(out)]
    return subprocess.Popen(
        [*command, *SETTINGS, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_resume_after_sigkill_reaches_the_uninterrupted_weights(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    process = _run(killed)
    state = killed / ".work" / "p3" / "s1" / "state" / "LATEST"
    _wait_for(state, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    visible = sorted(p.name for p in killed.iterdir() if not p.name.startswith("."))
    assert visible == ["p0", "p1"]  # p3 was being trained: no directory of that name

    resumed = _run(killed, "--resume")
    assert resumed.wait(timeout=300) == 0

    reference = tmp_path / "reference"
    assert main(["run", str(CHAIN), "--out", str(reference), *SETTINGS]) == 0

    stage = json.loads((killed / "p3" / "compass_phase.json").read_text())["stages"][0]
    assert stage["resumed_from_step"] and 0 < stage["resumed_from_step"] < 20
    after = load_file(killed / "p3" / "model.safetensors")
    expected = load_file(reference / "p3" / "model.safetensors")
    assert after.keys() == expected.keys()
    worst = max((after[k] - expected[k]).abs().max().item() for k in expected)
    assert worst <= 1e-6
    parent = load_file(reference / "p1" / "model.safetensors")
    # The comparison is about trained weights, not an untouched copy of the parent.
    assert any(not torch.equal(expected[k], parent[k]) for k in expected)
    assert not [p for p in killed.iterdir() if p.name.startswith(".p3")]  # no staging left
