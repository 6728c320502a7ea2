"""What both command-line tools share: phase arguments, loading, and the exit-2 error path."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from compass_eval.analysis.baselines import load_baselines
from compass_eval.analysis.report import ReportInputs, build_report, collect_logs, score_phases
from compass_eval.analysis.resampling import Bootstrap
from compass_eval.analysis.results import load_phase, parse_phase_specs
from compass_model.errors import CompassInputError
from compass_model.typed import add_flags, from_flags

BAD_INPUT = 2


def add_phase_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--results", type=Path, help="folder holding one sub-folder per phase")
    parser.add_argument(
        "--phases",
        nargs="+",
        required=required,
        metavar="PHASE[=PATH]",
        help="phases in training order; NAME is <results>/NAME, NAME=PATH a results file or folder",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="report phases evaluated with different settings, with a warning, instead of refusing",
    )
    add_flags(
        parser,
        Bootstrap,
        {
            "iters": "bootstrap resamples and swap permutations (default 10000)",
            "seed": "resampling seed (default 1234)",
            "level": "confidence level of intervals; significance is tested at 1 − level "
            "(default 0.95)",
        },
    )


def report_from_args(args: argparse.Namespace) -> dict:
    """Load the phases named on the command line and compute the report's content."""
    phases = [load_phase(name, path) for name, path in parse_phase_specs(args.phases, args.results)]
    settings = checked_settings(from_flags(Bootstrap, args))
    logs = collect_logs(phases, score_phases(phases))
    inputs = ReportInputs(
        phases=phases,
        logs=logs,
        baselines=load_baselines(),
        settings=settings,
        allow_mismatch=args.allow_mismatch,
    )
    return build_report(inputs)


def checked_settings(settings: Bootstrap) -> Bootstrap:
    """Resampling settings within the range where they mean what they say."""
    if not 100 <= settings.iters <= 1_000_000:
        raise CompassInputError(f"--iters {settings.iters}: give 100 … 1000000 (default 10000)")
    if settings.seed < 0:
        raise CompassInputError(f"--seed {settings.seed}: give a seed ≥ 0")
    if not 0.5 <= settings.level < 1.0:
        raise CompassInputError(f"--level {settings.level}: give a level in [0.5, 1), e.g. 0.95")
    return settings


def run(prog: str, body: Callable[[], int]) -> int:
    """Turn bad input into one line on stderr and exit status 2, never a traceback."""
    try:
        return body()
    except CompassInputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
