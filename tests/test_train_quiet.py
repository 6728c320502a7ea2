"""`compass-train` prints no bitsandbytes `kernels` notice ("Failed to load CPU gemm_4bit_forward
... No module named 'kernels'"): not for `--help`, not while the demo recipe trains its QLoRA
stage in 4 bits; and the filter holds back that one message only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from clitools import REPO, run_cli

from compass_train.cli import _hide_kernels_notice

NOTICE_WORDS = ("Failed to load", "kernels")


def _notice_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(w in line for w in NOTICE_WORDS)]


def test_help_prints_no_kernels_notice(tmp_path: Path) -> None:
    result = run_cli(["compass-train", "--help"], cwd=tmp_path)
    assert result.returncode == 0 and "usage: compass-train" in result.stdout
    assert _notice_lines(result.stdout + result.stderr) == []


@pytest.mark.slow
def test_a_demo_run_with_its_qlora_stage_prints_no_kernels_notice(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    demo = str(REPO / "recipes" / "demo.yaml")
    result = run_cli(
        ["compass-train", "run", demo, "--out", str(out), "--set", "stages.max_steps=1"],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "p2" / "compass_phase.json").read_text(encoding="utf-8"))
    assert manifest["stages"][0]["adapter"]["type"] == "qlora"  # 4-bit really ran
    assert _notice_lines(result.stdout + result.stderr) == []


def test_only_the_kernels_notice_is_held_back(caplog) -> None:
    _hide_kernels_notice()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        logger.warning(
            "Failed to load CPU gemm_4bit_forward from kernels-community: %s.",
            "No module named 'kernels'",
        )
        logger.warning("another bitsandbytes warning")
        logging.getLogger("bitsandbytes").warning("Failed to load CPU gemm_4bit_forward elsewhere")
    assert [r.getMessage() for r in caplog.records] == [
        "another bitsandbytes warning",
        "Failed to load CPU gemm_4bit_forward elsewhere",
    ]
