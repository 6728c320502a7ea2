"""`compass-report`: tables, trajectories, statistics and plots for a run of training phases."""

from __future__ import annotations

import argparse
from pathlib import Path

from compass_eval.analysis.cli_common import add_phase_arguments, report_from_args, run
from compass_eval.analysis.render import write_report
from compass_model.errors import CompassInputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compass-report",
        description="Compare lm-eval results of training phases: scores, forgetting, "
        "bootstrap intervals, paired tests; writes report.md/.html/.json and PNG plots.",
    )
    add_phase_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced whole)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        if args.out.exists() and not args.out.is_dir():
            raise CompassInputError(f"--out {args.out} is a file; give a folder")
        report = report_from_args(args)
        written = write_report(report, args.out)
        print(f"compass-report: wrote {len(written)} files to {args.out}")
        for note in report["mismatches"]:
            print(f"compass-report: warning: {note}")
        return 0

    return run("compass-report", body)


if __name__ == "__main__":
    raise SystemExit(main())
