"""compass-eval's "already evaluated" marker: the task definition files used (Compass's and
lm-eval's), both versions and the model arguments are part of it, so changing any re-runs."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import lm_eval
import pytest
from lm_eval.tasks import TaskManager

from compass_eval.paths import tasks_dir
from compass_eval.phase_eval import EvalSettings, evaluate_phases, evaluation_marker

SMOKE_FILES = {
    "compass_smoke.yaml",
    "compass_smoke_text.yaml",
    "compass_smoke_image.yaml",
    "_smoke_mc.yaml",
    "utils.py",
}


@pytest.fixture(scope="module")
def copied_tasks(tmp_path_factory) -> tuple[Path, TaskManager]:
    """Compass's smoke tasks copied to a folder of their own, which overrides the shipped ones."""
    root = tmp_path_factory.mktemp("tasks")
    shutil.copytree(tasks_dir() / "compass_smoke", root / "compass_smoke")
    return root / "compass_smoke", TaskManager(include_path=str(root))


def _marker(checkpoint: Path, manager: TaskManager, phase: str = "p0", **settings) -> dict:
    return evaluation_marker(checkpoint, phase, EvalSettings(**settings), manager)


def _names(marker: dict) -> set[str]:
    return {Path(path).name for path in marker["task_files"]}


def test_the_marker_holds_every_definition_file_of_the_tasks_and_both_versions(
    tiny_checkpoint, copied_tasks
):
    folder, manager = copied_tasks
    marker = _marker(tiny_checkpoint, manager, tasks=("compass_smoke",))
    assert _names(marker) == SMOKE_FILES  # the group's members, their template and utils.py
    assert all(Path(path).parent == folder.resolve() for path in marker["task_files"])
    assert marker["versions"] == {
        "compass-eval": importlib.metadata.version("compass-eval"),
        "lm_eval": importlib.metadata.version("lm_eval"),
    }
    # lm-eval's template convention: a YAML file whose name ends in `_yaml` instead of `.yaml`
    edinet = _names(_marker(tiny_checkpoint, manager, tasks=("edinet_fraud",)))
    assert {"edinet_fraud.yaml", "_binary_template_yaml", "utils.py"} <= edinet
    # lm-eval's own tasks count as much as Compass's; a tag brings in its members' folders.
    builtin = _marker(tiny_checkpoint, manager, tasks=("gsm8k",))["task_files"]
    gsm8k = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    assert str(gsm8k.resolve()) in builtin
    tagged = _marker(tiny_checkpoint, manager, tasks=("math_word_problems",))["task_files"]
    assert set(builtin) < set(tagged)


@pytest.mark.parametrize("edited", ["utils.py", "_smoke_mc.yaml", "compass_smoke_text.yaml"])
def test_editing_a_task_file_changes_the_marker(tiny_checkpoint, copied_tasks, edited):
    folder, manager = copied_tasks
    before = _marker(tiny_checkpoint, manager, tasks=("compass_smoke",))
    original = (folder / edited).read_text(encoding="utf-8")
    try:
        (folder / edited).write_text(original + "\n# edited\n", encoding="utf-8")
        after = _marker(tiny_checkpoint, manager, tasks=("compass_smoke",))
    finally:
        (folder / edited).write_text(original, encoding="utf-8")
    changed = {
        path
        for path in before["task_files"]
        if before["task_files"][path] != after["task_files"][path]
    }
    assert {Path(path).name for path in changed} == {edited}
    assert {**after, "task_files": before["task_files"]} == before  # nothing else moved


def test_the_model_arguments_are_in_the_marker(tiny_checkpoint, copied_tasks):
    _, manager = copied_tasks
    marker = _marker(tiny_checkpoint, manager)
    assert marker["model_args"] == f"pretrained={tiny_checkpoint},phase=p0,dtype=float32"
    assert _marker(tiny_checkpoint, manager, phase="p0-rerun")["model_args"] != marker["model_args"]
    assert _marker(tiny_checkpoint, manager, dtype="bfloat16")["model_args"].endswith("bfloat16")


def test_compass_eval_re_runs_a_phase_whose_task_file_was_edited(
    tmp_path, tiny_checkpoint, copied_tasks
):
    folder, manager = copied_tasks
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "p0").symlink_to(tiny_checkpoint)
    settings = EvalSettings(tasks=("compass_smoke_text",), limit=1)

    def run() -> str:
        outcome = evaluate_phases(
            tmp_path / "checkpoints", ["p0"], settings, tmp_path / "results", task_manager=manager
        )
        return outcome["p0"]

    assert run() == "evaluated"
    assert run().startswith("skipped")
    original = (folder / "utils.py").read_text(encoding="utf-8")
    try:
        (folder / "utils.py").write_text(original + "\n# edited\n", encoding="utf-8")
        assert run() == "evaluated"
    finally:
        (folder / "utils.py").write_text(original, encoding="utf-8")
    assert (
        run() == "evaluated"
    )  # the file is back as it was: the marker on disk is the edited one's
