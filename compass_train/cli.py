"""`compass-train`: `run` trains a recipe's phases into checkpoints, `plan` says what would run.

Bad input (recipe, data, arguments) is one line on stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from compass_model.errors import CompassInputError
from compass_model.typed import add_flags, from_flags
from compass_model.version import add_version_flag
from compass_train.recipe import RunOptions, load_recipe, schema_text
from compass_train.trackers import installed_trackers, log_folder, run_log

BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compass-train", description=__doc__.splitlines()[0])
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the recipe's phases")
    plan = commands.add_parser("plan", help="print stages, trainable parameters and data sizes")
    commands.add_parser("schema", help="print the JSON schema of a recipe (for editors)")
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
    add_flags(run, RunOptions)
    return parser


class _KernelsNotice(logging.Filter):
    """bitsandbytes logs, when imported (peft imports it), that the optional `kernels` package
    behind its fastest CPU 4-bit matmul is missing. It then uses its own CPU kernel, with which
    the QLoRA stage trains, so the notice asks nothing of a user: only this message is held
    back, only on bitsandbytes' CPU-ops logger."""

    LOGGER = "bitsandbytes.backends.cpu.ops"

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to load CPU gemm_4bit_forward")


def _hide_kernels_notice() -> None:
    logger = logging.getLogger(_KernelsNotice.LOGGER)
    if not any(isinstance(f, _KernelsNotice) for f in logger.filters):
        logger.addFilter(_KernelsNotice())


def _run(args: argparse.Namespace) -> int:
    from accelerate import Accelerator

    from compass_train.phases import PhaseRunner

    recipe = load_recipe(args.recipe, args.overrides)
    options = from_flags(RunOptions, args)
    if options.out.exists() and not options.out.is_dir():
        raise CompassInputError(f"--out {options.out} is a file; give a folder")
    trackers = installed_trackers(recipe.report_to)
    logs = log_folder(recipe, options.out)
    import torch

    accelerator = Accelerator(
        # Without a GPU, accelerate only sets up multi-process (gloo) training when told "cpu".
        cpu=torch.accelerator.current_accelerator() is None,
        mixed_precision="no" if recipe.mixed_precision == "fp32" else recipe.mixed_precision,
        log_with=trackers or None,
        project_dir=str(logs),
    )
    run_log(accelerator).start_later(recipe, trackers, logs)
    PhaseRunner(recipe, options, accelerator).run()
    accelerator.end_training()
    return 0


def _plan(args: argparse.Namespace) -> int:
    from compass_train.plan import plan_rows, render_plan

    recipe = load_recipe(args.recipe, args.overrides)
    print(render_plan(recipe, plan_rows(recipe)))
    return 0


def main(argv: list[str] | None = None) -> int:
    _hide_kernels_notice()
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            print(schema_text(), end="")
            return 0
        return _run(args) if args.command == "run" else _plan(args)
    except CompassInputError as error:
        print(f"compass-train: error: {error}", file=sys.stderr)
        return BAD_INPUT
