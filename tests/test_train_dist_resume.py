"""A two-process DDP run killed with SIGKILL in the middle of a LoRA stage with dropout (so each
process's RNG matters), resumed with two processes, reaches the weights of an uninterrupted
two-process run: the step state holds every process's RNG, not only the main one's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"
SETTINGS = ["--set", "p3.s1.max_steps=20", "--set", "p3.s1.save_every=3"]

pytestmark = pytest.mark.slow


def _launch(out: Path, *extra: str) -> subprocess.Popen:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [
        accelerate, "launch",
        "--config_file", str(REPO / "recipes" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0",
        "-m", "compass_train", "run", str(CHAIN), "--out", str(out), *SETTINGS, *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _children(pid: int) -> list[int]:
    """The launcher's workers (torch's agent starts each in a session of its own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_killed_two_process_run_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    launcher = _launch(killed)
    latest = killed / ".work" / "p3" / "s1" / "state" / "LATEST"
    deadline = time.monotonic() + 240
    while not latest.exists():
        assert launcher.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"{latest} never appeared"
        time.sleep(0.02)
    for worker in _children(launcher.pid):
        os.kill(worker, signal.SIGKILL)
    launcher.kill()
    launcher.wait()
    assert not (killed / "p3").exists()

    assert _launch(killed, "--resume").wait(timeout=300) == 0
    assert _launch(reference).wait(timeout=300) == 0

    stage = json.loads((killed / "p3" / "compass_phase.json").read_text())["stages"][0]
    assert stage["processes"] == 2 and 0 < stage["resumed_from_step"] < 20
    after, expected = (load_file(out / "p3" / "model.safetensors") for out in (killed, reference))
    assert max((after[k] - expected[k]).abs().max().item() for k in expected) <= 1e-6
