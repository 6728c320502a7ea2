"""`compass-train`: `run` trains a recipe's phases into checkpoints, `plan` says what would run.

Bad input (recipe, data, arguments) is one line on stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path

from compass_model.errors import CompassInputError
from compass_train.recipe import load_recipe

BAD_INPUT = 2
_FLAG_HELP = {
    "out": "folder receiving one checkpoint per phase (p0, p1, ...)",
    "only": "run this phase only, from its parent's finished checkpoint",
    "resume": "continue a killed run from its last saved step",
    "force": "retrain phases whose finished checkpoint exists",
}


def _parser() -> argparse.ArgumentParser:
    from compass_train.phases import RunOptions

    parser = argparse.ArgumentParser(prog="compass-train", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the recipe's phases")
    plan = commands.add_parser("plan", help="print stages, trainable parameters and data sizes")
    for sub in (run, plan):
        sub.add_argument("recipe", type=Path, help="recipe YAML, e.g. recipes/demo.yaml")
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a recipe field: seed=1, stages.max_steps=5, p1.s1.lr=1e-4",
        )
    # One flag per RunOptions field, so options and flags cannot drift apart.
    for option in dataclasses.fields(RunOptions):
        flag = "--" + option.name.replace("_", "-")
        if option.type in ("bool", bool):
            run.add_argument(flag, action="store_true", help=_FLAG_HELP[option.name])
        else:
            required = option.default is dataclasses.MISSING
            kind = Path if option.name == "out" else str
            run.add_argument(flag, type=kind, required=required, help=_FLAG_HELP[option.name])
    return parser


def installed_trackers(names: list[str]) -> list[str]:
    """The recipe's trackers that can be imported here; the others are named on stderr."""
    usable = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            print(
                f"compass-train: warning: report_to {name}: not installed, skipped", file=sys.stderr
            )
        else:
            usable.append(name)
    return usable


def _run(args: argparse.Namespace) -> int:
    from accelerate import Accelerator

    from compass_train.phases import PhaseRunner, RunOptions

    recipe = load_recipe(args.recipe, args.overrides)
    options = RunOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunOptions)})
    if options.out.exists() and not options.out.is_dir():
        raise CompassInputError(f"--out {options.out} is a file; give a folder")
    trackers = installed_trackers(recipe.report_to)
    import torch

    accelerator = Accelerator(
        # Without a GPU, accelerate only sets up multi-process (gloo) training when told "cpu".
        cpu=torch.accelerator.current_accelerator() is None,
        mixed_precision="no" if recipe.mixed_precision == "fp32" else recipe.mixed_precision,
        log_with=trackers or None,
        project_dir=str(options.out / ".work" / "logs"),
    )
    if trackers:
        accelerator.init_trackers(recipe.name)
    PhaseRunner(recipe, options, accelerator).run()
    accelerator.end_training()
    return 0


def _plan(args: argparse.Namespace) -> int:
    from compass_train.plan import plan_rows, render_plan

    recipe = load_recipe(args.recipe, args.overrides)
    print(render_plan(recipe, plan_rows(recipe)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _plan(args)
    except CompassInputError as error:
        print(f"compass-train: error: {error}", file=sys.stderr)
        return BAD_INPUT
