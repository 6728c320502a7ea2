"""What both command-line tools share: phase arguments, loading, and the exit-2 error path."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from compass_eval.analysis.baselines import load_baselines
from compass_eval.analysis.config import add_flags, override
from compass_eval.analysis.report import ReportInputs, build_report, collect_logs, score_phases
from compass_eval.analysis.results import load_phase, parse_phase_specs
from compass_eval.analysis.stats import Bootstrap
from compass_model.errors import CompassInputError

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
            "iters": "bootstrap resamples (default 1000)",
            "seed": "bootstrap seed (default 1234)",
            "level": "confidence level of intervals (default 0.95)",
            "alpha": "significance level of paired tests (default 0.05)",
        },
    )


def report_from_args(args: argparse.Namespace) -> dict:
    """Load the phases named on the command line and compute the report's content."""
    phases = [load_phase(name, path) for name, path in parse_phase_specs(args.phases, args.results)]
    logs = collect_logs(phases, score_phases(phases))
    inputs = ReportInputs(
        phases=phases,
        logs=logs,
        baselines=load_baselines(),
        settings=override(Bootstrap(), args),
        allow_mismatch=args.allow_mismatch,
    )
    return build_report(inputs)


def run(prog: str, body: Callable[[], int]) -> int:
    """Turn bad input into one line on stderr and exit status 2, never a traceback."""
    try:
        return body()
    except CompassInputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return BAD_INPUT
