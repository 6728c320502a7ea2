"""Paths of the repository and the shared data, and a runner for the real command-line tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VENV_BIN = Path(sys.executable).parent


def cli_env(**extra: str) -> dict[str, str]:
    """Offline, quiet, deterministic environment for subprocesses of the real CLIs."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        COMPASS_DATA_DIR=str(SHARED_DATA),
        OMP_NUM_THREADS="1",
    )
    env.update(extra)
    return env


def run_python(args: list[str], cwd: Path, timeout: int = 300, **env: str):
    """Runs this interpreter (`-c SCRIPT …`, `-m module …`) with the console scripts' environment."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(args: list[str], cwd: Path, timeout: int = 300, **env: str):
    """Runs a console script of this venv (e.g. `lm_eval`) as a user would."""
    command = [str(VENV_BIN / args[0]), *args[1:]]
    return subprocess.run(
        command, cwd=cwd, env=cli_env(**env), capture_output=True, text=True, timeout=timeout
    )
