"""`compass-eval`: every phase checkpoint through lm-eval with one set of settings.

Calls lm-eval's Python API as its CLI would (samples logged, results written by lm-eval's own
tracker), one folder per phase. A phase already evaluated with the same settings, model arguments,
task definition files, Compass and lm-eval versions, checkpoint files and data files is skipped, so
a rerun after a crash or after training one more phase only does what is missing. A phase's folder
appears only once its evaluation is complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compass_eval.data.root import data_root
from compass_model.atomic import output_lock, staged_directory
from compass_model.checkpoint import check_checkpoint_dir
from compass_model.dtypes import DType
from compass_model.errors import CompassInputError
from compass_model.typed import add_flags, from_flags, option
from compass_model.version import add_version_flag

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

MARKER = "compass_eval.json"
# lm-eval's own defaults for its four seeds (Python random, numpy, torch, few-shot sampler), so
# the few-shot contexts are those of a plain `lm_eval` run; lm-eval records them in the results'
# `config` (`random_seed`, `numpy_seed`, `torch_seed`, `fewshot_seed`), and the marker keeps them.
LM_EVAL_SEEDS = (0, 1234, 1234, 1234)
# Distributions whose code defines what a task computes (Compass's task helpers, lm-eval's tasks,
# filters and metrics): another version of either is another evaluation.
VERSIONED = ("compass-eval", "lm_eval")


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes the numbers; two runs with equal settings are interchangeable."""

    tasks: tuple[str, ...] = ("compass_suite",)
    limit: float | None = option(
        None, gt=0.0, help="documents per task (below 1: a share of them), for a quick look"
    )
    num_fewshot: int | None = option(None, ge=0, help="few-shot examples (default: each task's)")
    batch_size: int = option(1, ge=1, help="requests per forward pass")
    dtype: DType = option("float32", help="weights' dtype")
    device: str | None = option(None, help="torch device, e.g. cuda:0 (default: cpu)")
    seeds: tuple[int, int, int, int] = LM_EVAL_SEEDS
    apply_chat_template: bool = option(
        False, help="render every prompt with the checkpoint's chat template (an instruct model)"
    )
    gen_kwargs: str | None = option(
        None, help="generation settings of generate_until tasks, as lm-eval's --gen_kwargs"
    )


def checkpoint_identity(checkpoint: Path) -> dict[str, Any]:
    """Cheap to compute even for 17 GB of weights: file sizes and modification times."""
    files = sorted(checkpoint.glob("*.safetensors")) + sorted(checkpoint.glob("*.json"))
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files}


def data_identity() -> dict[str, Any]:
    """The data root in force and its files' sizes and modification times: evaluating against
    other or changed data is not "already done"."""
    root = data_root()
    files = sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() else []
    return {
        "root": str(root),
        "files": {
            f.relative_to(root).as_posix(): [f.stat().st_size, f.stat().st_mtime_ns] for f in files
        },
    }


def _is_definition(path: Path) -> bool:
    # lm-eval's templates are YAML without the suffix (`_default_template_yaml`).
    return path.suffix in {".py", ".yaml", ".yml"} or path.name.endswith("_yaml")


def _definition_paths(names: Iterable[str], task_manager: TaskManager) -> set[Path]:
    """A task's whole folder (its YAML, the templates it includes, `utils.py`, prompt files
    below it); a group's YAML and the folder's files beside it (its inline tasks may use them),
    then its members; a tag's members."""
    index = task_manager.task_index
    paths: set[Path] = set()
    pending, seen = list(names), set()
    while pending:
        name = pending.pop()
        entry = index.get(name)
        if name in seen or entry is None:  # an unknown name: lm-eval itself refuses it
            continue
        seen.add(name)
        kind = entry.kind.name
        if kind == "TAG":
            pending += sorted(entry.tags)
            continue
        if entry.yaml_path is None:
            continue
        folder = Path(entry.yaml_path).resolve().parent
        files = folder.glob("*") if kind == "GROUP" else folder.rglob("*")
        paths.update(path for path in files if path.is_file() and _is_definition(path))
        if kind == "GROUP":
            for member in (entry.cfg or {}).get("task", []):
                child = member.get("task") if isinstance(member, dict) else member
                if isinstance(child, str):
                    pending.append(child)
    return paths


def task_definition_files(names: Iterable[str], task_manager: TaskManager) -> dict[str, str]:
    """SHA-256 of every file that defines the named tasks, groups and tags (Compass's and
    lm-eval's alike), so an edited YAML or `utils.py` is not "already evaluated"."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(_definition_paths(names, task_manager))
    }


def model_args(checkpoint: Path, phase: str, settings: EvalSettings) -> str:
    """The `--model_args` of the `compass` model for one phase."""
    return f"pretrained={checkpoint},phase={phase},dtype={settings.dtype}"


def evaluation_marker(
    checkpoint: Path, phase: str, settings: EvalSettings, task_manager: TaskManager
) -> dict[str, Any]:
    """What makes two evaluations of a phase interchangeable, as its JSON reads back."""
    marker = {
        "settings": dataclasses.asdict(settings),
        "model_args": model_args(checkpoint, phase, settings),
        "versions": {name: importlib.metadata.version(name) for name in VERSIONED},
        "task_files": task_definition_files(settings.tasks, task_manager),
        "checkpoint": checkpoint_identity(checkpoint),
        "data": data_identity(),
    }
    return json.loads(json.dumps(marker))


def _already_done(folder: Path, wanted: dict[str, Any]) -> bool:
    marker = folder / MARKER
    return marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted


def evaluate_phase(
    checkpoint: Path, phase: str, settings: EvalSettings, out: Path, task_manager: TaskManager
) -> None:
    """Runs lm-eval into a temporary sibling folder, then renames it to `out/<phase>`."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    with staged_directory(out / phase) as staging:
        tracker = EvaluationTracker(output_path=str(staging))
        results = simple_evaluate(
            model="compass",
            model_args=model_args(checkpoint, phase, settings),
            tasks=list(settings.tasks),
            num_fewshot=settings.num_fewshot,
            batch_size=settings.batch_size,
            device=settings.device,
            limit=settings.limit,
            apply_chat_template=settings.apply_chat_template,
            gen_kwargs=settings.gen_kwargs,
            log_samples=True,
            evaluation_tracker=tracker,
            task_manager=task_manager,
            random_seed=settings.seeds[0],
            numpy_random_seed=settings.seeds[1],
            torch_random_seed=settings.seeds[2],
            fewshot_random_seed=settings.seeds[3],
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        marker = evaluation_marker(checkpoint, phase, settings, task_manager)
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def evaluate_phases(
    checkpoints: Path,
    phases: list[str],
    settings: EvalSettings,
    out: Path,
    force: bool = False,
    task_manager: TaskManager | None = None,
) -> dict[str, str]:
    """Checks every checkpoint before evaluating any, then evaluates or skips each phase; a second
    run into the same `out` stops with one line instead of evaluating every phase twice. One task
    index (lm-eval's default: its tasks and Compass's) serves the markers and every evaluation."""
    if checkpoints.resolve().is_relative_to(out.resolve()):
        raise CompassInputError(
            f"--out {out} is or holds --checkpoints {checkpoints}: give a separate results folder"
        )
    created = not out.exists()
    try:
        with output_lock(out):
            return _evaluate_all(checkpoints, phases, settings, out, force, task_manager)
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was evaluated: leave no trace


def _evaluate_all(
    checkpoints: Path,
    phases: list[str],
    settings: EvalSettings,
    out: Path,
    force: bool,
    task_manager: TaskManager | None,
) -> dict[str, str]:
    folders = {phase: check_checkpoint_dir(checkpoints / phase) for phase in phases}
    if task_manager is None:
        from lm_eval.tasks import TaskManager

        task_manager = TaskManager()
    unknown = [name for name in settings.tasks if name not in task_manager.all_tasks]
    if unknown:
        raise CompassInputError(
            f"--tasks: unknown task or group {', '.join(unknown)}; `lm_eval ls tasks` lists them"
        )
    outcome = {}
    for phase, checkpoint in folders.items():
        wanted = evaluation_marker(checkpoint, phase, settings, task_manager)
        if not force and _already_done(out / phase, wanted):
            outcome[phase] = "skipped (already evaluated with these settings)"
            continue
        evaluate_phase(checkpoint, phase, settings, out, task_manager)
        outcome[phase] = "evaluated"
    return outcome


def _seeds(text: str) -> tuple[int, int, int, int]:
    """As lm-eval's `--seed`: one integer for all four seeds, or four comma-separated ones."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (1, 4):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one integer or four (random,numpy,torch,fewshot), e.g. 0,1234,1234,1234"
        )
    return values * 4 if len(values) == 1 else values


def _parser() -> argparse.ArgumentParser:
    defaults = EvalSettings()
    parser = argparse.ArgumentParser(prog="compass-eval", description=__doc__.splitlines()[0])
    add_version_flag(parser)
    parser.add_argument(
        "--checkpoints", type=Path, required=True, help="folder of phase checkpoints"
    )
    parser.add_argument("--phases", nargs="+", required=True, help="phase names, e.g. p0 p1 p2 p3")
    parser.add_argument(
        "--out", type=Path, required=True, help="results folder, one sub-folder per phase"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(defaults.tasks),
        help=f"tasks or groups (default: {' '.join(defaults.tasks)})",
    )
    add_flags(parser, EvalSettings)
    parser.add_argument(
        "--seed",
        dest="seeds",
        type=_seeds,
        default=defaults.seeds,
        help="random,numpy,torch,fewshot seeds, or one for all four (default: lm-eval's "
        + ",".join(map(str, defaults.seeds))
        + ")",
    )
    parser.add_argument("--force", action="store_true", help="evaluate even where results exist")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = from_flags(EvalSettings, args)
    except CompassInputError as error:
        print(f"compass-eval: error: {error}", file=sys.stderr)
        return 2
    if len(set(args.phases)) != len(args.phases):
        print("compass-eval: error: --phases names a phase twice", file=sys.stderr)
        return 2
    try:
        outcome = evaluate_phases(args.checkpoints, args.phases, settings, args.out, args.force)
    except CompassInputError as error:
        print(f"compass-eval: error: {error}", file=sys.stderr)
        return 2
    for phase, what in outcome.items():
        print(f"{phase}: {what} -> {args.out / phase}")
        headline = headline_scores(phase, args.out / phase)
        if headline:
            print(f"  {headline}")
    return 0


def headline_scores(phase: str, folder: Path) -> str:
    """The phase's benchmark scores in the report's units, on one line (empty for tasks outside
    the report's benchmarks)."""
    from compass_eval.analysis.benchmarks import score_phase
    from compass_eval.analysis.results import load_phase
    from compass_eval.analysis.units import fmt

    scores = score_phase(load_phase(phase, folder))
    return "  ".join(f"{name} {fmt(score.metric, score.value)}" for name, score in scores.items())


if __name__ == "__main__":
    sys.exit(main())
