"""`compass-eval`: every phase checkpoint through lm-eval with one set of settings.

Calls lm-eval's Python API as its CLI would (samples logged, results written by lm-eval's own
tracker), one folder per phase. A phase already evaluated with the same settings on the same
checkpoint files and data files is skipped, so a rerun after a crash or after training one more
phase only does what is missing. A phase's folder appears only once its evaluation is complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compass_eval.data.root import data_root
from compass_model.atomic import output_lock, staged_directory
from compass_model.checkpoint import check_checkpoint_dir
from compass_model.errors import CompassInputError

MARKER = "compass_eval.json"
# lm-eval's own defaults for its four seeds (Python random, numpy, torch, few-shot sampler), so
# the few-shot contexts are those of a plain `lm_eval` run; lm-eval records them in the results'
# `config` (`random_seed`, `numpy_seed`, `torch_seed`, `fewshot_seed`), and the marker keeps them.
LM_EVAL_SEEDS = (0, 1234, 1234, 1234)


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes the numbers; two runs with equal settings are interchangeable."""

    tasks: tuple[str, ...] = ("compass_suite",)
    limit: float | None = None
    num_fewshot: int | None = None
    batch_size: int = 1
    dtype: str = "float32"
    device: str | None = None
    seeds: tuple[int, int, int, int] = LM_EVAL_SEEDS
    # Render prompts with the checkpoint's chat template, as an instruct model is prompted.
    apply_chat_template: bool = False


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


def _marker(checkpoint: Path, settings: EvalSettings) -> dict[str, Any]:
    """What makes two evaluations of a phase interchangeable, as its JSON reads back."""
    marker = {
        "settings": dataclasses.asdict(settings),
        "checkpoint": checkpoint_identity(checkpoint),
        "data": data_identity(),
    }
    return json.loads(json.dumps(marker))


def _already_done(folder: Path, wanted: dict[str, Any]) -> bool:
    marker = folder / MARKER
    return marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted


def evaluate_phase(checkpoint: Path, phase: str, settings: EvalSettings, out: Path) -> None:
    """Runs lm-eval into a temporary sibling folder, then renames it to `out/<phase>`."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    with staged_directory(out / phase) as staging:
        tracker = EvaluationTracker(output_path=str(staging))
        model_args = f"pretrained={checkpoint},phase={phase},dtype={settings.dtype}"
        results = simple_evaluate(
            model="compass",
            model_args=model_args,
            tasks=list(settings.tasks),
            num_fewshot=settings.num_fewshot,
            batch_size=settings.batch_size,
            device=settings.device,
            limit=settings.limit,
            apply_chat_template=settings.apply_chat_template,
            log_samples=True,
            evaluation_tracker=tracker,
            random_seed=settings.seeds[0],
            numpy_random_seed=settings.seeds[1],
            torch_random_seed=settings.seeds[2],
            fewshot_random_seed=settings.seeds[3],
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        marker = _marker(checkpoint, settings)
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def evaluate_phases(
    checkpoints: Path, phases: list[str], settings: EvalSettings, out: Path, force: bool = False
) -> dict[str, str]:
    """Checks every checkpoint before evaluating any, then evaluates or skips each phase; a second
    run into the same `out` stops with one line instead of evaluating every phase twice."""
    with output_lock(out):
        folders = {phase: check_checkpoint_dir(checkpoints / phase) for phase in phases}
        outcome = {}
        for phase, checkpoint in folders.items():
            if not force and _already_done(out / phase, _marker(checkpoint, settings)):
                outcome[phase] = "skipped (already evaluated with these settings)"
                continue
            evaluate_phase(checkpoint, phase, settings, out)
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
    parser.add_argument(
        "--checkpoints", type=Path, required=True, help="folder of phase checkpoints"
    )
    parser.add_argument("--phases", nargs="+", required=True, help="phase names, e.g. p0 p1 p2 p3")
    parser.add_argument(
        "--out", type=Path, required=True, help="results folder, one sub-folder per phase"
    )
    parser.add_argument("--tasks", nargs="+", default=list(defaults.tasks))
    parser.add_argument("--limit", type=float, default=defaults.limit)
    parser.add_argument("--num-fewshot", type=int, default=defaults.num_fewshot)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--dtype", default=defaults.dtype)
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument(
        "--seed",
        dest="seeds",
        type=_seeds,
        default=defaults.seeds,
        help="random,numpy,torch,fewshot seeds, or one for all four (default: lm-eval's "
        + ",".join(map(str, defaults.seeds))
        + ")",
    )
    parser.add_argument(
        "--apply-chat-template",
        action="store_true",
        help="render every prompt with the checkpoint's chat template",
    )
    parser.add_argument("--force", action="store_true", help="evaluate even where results exist")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fields = {f.name for f in dataclasses.fields(EvalSettings)}
    values = {name: value for name, value in vars(args).items() if name in fields}
    settings = EvalSettings(**{**values, "tasks": tuple(args.tasks)})
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
