"""`compass-report`: tables, trajectories, statistics and plots for a run of training phases."""

from __future__ import annotations

import argparse
from pathlib import Path

from compass_eval.analysis.cli_common import add_phase_arguments, report_from_args, run
from compass_eval.analysis.gate import GatePolicy, evaluate_gate
from compass_eval.analysis.render import REPORT_MARKER, write_report
from compass_eval.analysis.report import gate_summary
from compass_eval.analysis.results import parse_phase_specs
from compass_model.atomic import check_replaceable
from compass_model.errors import CompassInputError
from compass_model.typed import load
from compass_model.version import add_version_flag


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compass-report",
        description="Compare lm-eval results of training phases: scores, forgetting, "
        "bootstrap intervals, paired tests; writes report.md/.html/.json and PNG plots.",
    )
    add_version_flag(parser)
    add_phase_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder: new, empty, or an earlier report (which is replaced whole)",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        help="a compass-gate policy YAML: the report gets a section with the gate's verdict",
    )
    return parser


def _refuse_out_over_inputs(out: Path, results: Path | None, phase_paths: list[Path]) -> None:
    """Replacing `--out` whole must never touch what the report is read from (a results file's
    folder included: the sample logs beside it are read too)."""
    target = out.resolve()
    for path in phase_paths:
        source = path.resolve() if path.is_dir() else path.resolve().parent
        if source.is_relative_to(target) or target.is_relative_to(source):
            raise CompassInputError(
                f"--out {out} overlaps the input {path}: write the report to a folder of its own"
            )
    if results is not None and results.resolve().is_relative_to(target):
        raise CompassInputError(
            f"--out {out} holds --results {results}: write the report to a folder of its own"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        if args.out.exists() and not args.out.is_dir():
            raise CompassInputError(f"--out {args.out} is a file; give a folder")
        phase_paths = [path for _, path in parse_phase_specs(args.phases, args.results)]
        _refuse_out_over_inputs(args.out, args.results, phase_paths)
        check_replaceable(args.out, REPORT_MARKER)
        policy = load(GatePolicy, args.policy, "policy") if args.policy else None
        report = report_from_args(args)
        if policy is not None:
            report["gate"] = gate_summary(evaluate_gate(report, policy), str(args.policy))
        written = write_report(report, args.out)
        print(f"compass-report: wrote {len(written)} files to {args.out}")
        for note in report["mismatches"]:
            print(f"compass-report: warning: {note}")
        return 0

    return run("compass-report", body)


if __name__ == "__main__":
    raise SystemExit(main())
