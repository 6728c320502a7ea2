"""`compass-train` on bad input (one line, exit 2, nothing written) and `plan` on the paper model."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compass_model.assemble import build_on_meta
from compass_model.config import preset
from compass_train.cli import installed_trackers, main

REPO = Path(__file__).resolve().parents[1]
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"


def _recipe(tmp_path: Path, edit) -> Path:
    """The test chain with absolute data paths, edited, written beside the test's output."""
    raw = yaml.safe_load(CHAIN.read_text(encoding="utf-8"))
    for phase in raw["phases"]:
        for stage in phase["stages"]:
            stage["data"] = [str((CHAIN.parent / d).resolve()) for d in stage["data"]]
    edit(raw)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _stage(raw: dict, phase: str = "p1") -> dict:
    return next(p for p in raw["phases"] if p["name"] == phase)["stages"][0]


BAD = {
    "unknown stage key": (
        lambda raw: _stage(raw).update(learning_rate=1e-3),
        "stages[s1]: unknown key 'learning_rate'",
    ),
    "module matching nothing": (
        lambda raw: _stage(raw).update(train=["model.no_such_tower"]),
        "'model.no_such_tower' matches no module in the model",
    ),
    "missing data file": (
        lambda raw: _stage(raw, "p3").update(data=["/nonexistent/finqa.jsonl"]),
        "training data /nonexistent/finqa.jsonl does not exist",
    ),
    "LoRA on a frozen module": (
        lambda raw: _stage(raw, "p3").update(freeze=["llm"]),
        "LoRA on 'llm', which the same stage freezes",
    ),
    "LoRA on a frozen module, through a glob": (
        lambda raw: _stage(raw, "p3").update(
            freeze=["model.language_model.layers.0*"], lora={"modules": ["llm"], "r": 2, "alpha": 4}
        ),
        "LoRA on 'model.language_model.layers.0.self_attn.q_proj', which the same stage freezes",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_recipe_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, capsys, case) -> None:
    edit, message = BAD[case]
    out = tmp_path / "ckpt"
    assert main(["run", str(_recipe(tmp_path, edit)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compass-train: error: ") and err.count("\n") == 1
    assert message in err
    assert not out.exists()


def test_only_a_phase_whose_parent_is_missing_fails_from_the_installed_command(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ckpt"
    command = shutil.which("compass-train", path=str(Path(sys.executable).parent))
    assert command, "the compass-train console script is not installed"
    result = subprocess.run(
        [command, "run", str(CHAIN), "--out", str(out), "--only", "p3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("compass-train")]
    assert lines == [
        f"compass-train: error: --only p3: its parent checkpoint {out / 'p1'} does not exist "
        "(or is unfinished); run phase p1 first"
    ]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_set_overrides_pass_the_same_checks(tmp_path: Path, capsys) -> None:
    assert main(["plan", str(CHAIN), "--set", "stages.batch_size=zero"]) == 2
    assert "stages[s1].batch_size: expected int, got 'zero'" in capsys.readouterr().err
    assert main(["plan", str(CHAIN), "--set", "p3.s1.lora.r=16", "--set", "seed=9"]) == 0
    printed = capsys.readouterr().out
    assert "seed 9" in printed and "r=16 alpha=8" in printed


def test_plan_of_the_paper_recipe_counts_every_stage_on_the_meta_device(capsys) -> None:
    assert main(["plan", str(REPO / "recipes" / "paper.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_stage = {line.split(" ", 1)[0]: line for line in lines[1:]}
    assert list(by_stage) == ["p1/s1", "p1/s2", "p2/s1", "p3/s1", "p3/s2"]
    # Projector 1152->4096->4096 with biases: 1152*4096 + 4096 + 4096*4096 + 4096.
    assert "trainable 21,504,000 (projector 21,504,000)" in by_stage["p1/s1"]
    # LoRA adds r * (in + out) per Linear: q, k, v, o, gate, up, down in each of 32 layers.
    per_rank = 32 * (4 * (4096 + 4096) + 2 * (4096 + 14336) + (14336 + 4096))
    assert f"lora:llm {64 * per_rank:,}" in by_stage["p1/s2"]
    assert f"trainable {32 * per_rank:,} (lora:llm {32 * per_rank:,})" in by_stage["p2/s1"]
    assert "4-bit NF4" in by_stage["p2/s1"]
    assert f"trainable {16 * per_rank + 21_504_000:,}" in by_stage["p3/s2"]
    assert all(p.is_meta for p in build_on_meta(preset("paper")).parameters())


def test_plan_says_steps_and_the_missing_path(tmp_path: Path, capsys) -> None:
    assert main(["plan", str(CHAIN), "--set", "stages.max_steps=null"]) == 0
    (first, *_) = capsys.readouterr().out.splitlines()[1:]
    records = int(first.rsplit("; ", 1)[1].split()[0].replace(",", ""))
    batch = int(first.split("; batch ")[1].split(";")[0])
    assert f"; {-(-records // batch):,} steps (epochs 1)" in first  # one epoch, one process
    assert main(["plan", str(REPO / "recipes" / "paper.yaml")]) == 0
    missing = (REPO / "data" / "p3" / "finqa").resolve()
    assert f"data missing: {missing}" in capsys.readouterr().out


def test_ablation_is_a_recipe_whose_p3_starts_from_p1(capsys) -> None:
    assert main(["plan", str(REPO / "recipes" / "ablation_skip_p2.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "phases p0 -> p1 -> p3" in lines[0]
    assert [line.split(" ", 3)[:3] for line in lines[1:]] == [
        ["p1/s1", "(from", "p0):"],
        ["p1/s2", "(from", "p0):"],
        ["p3/s1", "(from", "p1):"],
        ["p3/s2", "(from", "p1):"],
    ]


def test_trackers_are_checked_by_the_recipe_and_skipped_when_missing(capsys) -> None:
    assert main(["plan", str(CHAIN), "--set", "report_to=[tensorbored]"]) == 2
    assert "report_to[0]: 'tensorbored' is not one of tensorboard, wandb, mlflow" in (
        capsys.readouterr().err
    )
    usable = installed_trackers(["tensorboard", "wandb", "mlflow"])
    missing = [n for n in ("tensorboard", "wandb", "mlflow") if importlib.util.find_spec(n) is None]
    assert sorted(usable + missing) == ["mlflow", "tensorboard", "wandb"]
    assert capsys.readouterr().err.count("not installed, skipped") == len(missing)
