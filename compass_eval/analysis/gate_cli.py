"""`compass-gate`: exit 1 when the candidate phase forgot more than the policy allows."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from compass_eval.analysis.cli_common import add_phase_arguments, report_from_args, run
from compass_eval.analysis.gate import TOO_FEW_PHASES, GatePolicy, evaluate_gate, gate_table
from compass_model.errors import CompassInputError
from compass_model.typed import add_flags, from_flags, load
from compass_model.version import add_version_flag


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compass-gate",
        description="Fail (exit 1) when a benchmark dropped more than allowed; exit 2 on bad input.",
    )
    add_version_flag(parser)
    add_phase_arguments(parser, required=False)
    parser.add_argument("--report", type=Path, help="a report.json to gate instead of results")
    parser.add_argument("--policy", type=Path, help="YAML policy; flags given override it")
    add_flags(
        parser,
        GatePolicy,
        {
            "max_drop": "largest allowed drop, in the metric's own scale (default 0.05)",
            "against": "reference: 'peak' (best earlier phase, default), or a phase name",
            "candidate": "phase under test (default: the last)",
            "require_significant": "fail only on a drop beyond max_drop that the one-sided paired "
            "test finds significant after Holm's correction (default); --no-require-significant "
            "compares point scores only (not calibrated)",
        },
    )
    return parser


def _load_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompassInputError(f"{path}: not readable as JSON ({exc})") from None
    if not (
        isinstance(report, dict)
        and isinstance(report.get("phases"), list)
        and isinstance(report.get("benchmarks"), dict)
        and all(isinstance(b, dict) and "scores" in b for b in report["benchmarks"].values())
    ):
        raise CompassInputError(
            f"{path}: not a compass-report report.json (needs phases and benchmarks)"
        )
    for entry in report["benchmarks"].values():
        entry.setdefault("paired", [])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)

    def body() -> int:
        if (args.report is None) == (args.phases is None):
            raise CompassInputError("give either --report report.json or --phases (with --results)")
        if args.phases is not None and len(args.phases) < 2:
            raise CompassInputError(TOO_FEW_PHASES)  # before loading anything
        policy = load(GatePolicy, args.policy, "policy") if args.policy else GatePolicy()
        policy = from_flags(GatePolicy, args, policy)
        report = _load_report(args.report) if args.report else report_from_args(args)
        result = evaluate_gate(report, policy)
        table = gate_table(result)
        print(table, end="")
        for warning in result.warnings:
            print(f"compass-gate: warning: {warning}", file=sys.stderr)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write("## compass-gate\n\n" + table + "\n")
            except (
                OSError
            ) as exc:  # the verdict stands; a summary that cannot be written is not one
                print(
                    f"compass-gate: warning: cannot append to GITHUB_STEP_SUMMARY ({exc})",
                    file=sys.stderr,
                )
        return 1 if result.failed else 0

    return run("compass-gate", body)


if __name__ == "__main__":
    raise SystemExit(main())
