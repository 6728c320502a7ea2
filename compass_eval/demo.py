"""The end-to-end demo on the tiny model: train P0→P3, evaluate every phase, report, gate.

`make demo` runs it with the bundled data (`COMPASS_DATA_DIR=demo` unless set). Every step is one
of the project's own commands, so the demo shows exactly what a user would run; each step's
output stays in `--out` and a rerun skips what is already done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from compass_eval.paths import reports_dir

PHASES = ["p0", "p1", "p2", "p3"]
TASKS = ["compass_suite", "compass_smoke"]


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run_demo(out: Path, recipe: Path, max_steps: int | None, limit: float | None) -> int:
    """Returns the gate's exit status (0 held, 1 regression); raises on anything else."""
    from compass_eval.analysis import gate_cli, report_cli
    from compass_eval.phase_eval import EvalSettings, evaluate_phases
    from compass_train import cli as train_cli

    os.environ.setdefault("COMPASS_DATA_DIR", "demo")
    checkpoints, results, report = out / "checkpoints", out / "results", out / "report"
    started = _step(f"1/4 train {recipe} into {checkpoints}")
    train_args = ["run", str(recipe), "--out", str(checkpoints)]
    if max_steps is not None:
        train_args += ["--set", f"stages.max_steps={max_steps}"]
    if train_cli.main(train_args) != 0:
        raise SystemExit(2)
    _step(f"2/4 evaluate {' '.join(PHASES)} on {' '.join(TASKS)} into {results}")
    # The demo model only ever saw chat-formatted records, so it is prompted as it was trained.
    settings = EvalSettings(tasks=tuple(TASKS), limit=limit, apply_chat_template=True)
    for phase, outcome in evaluate_phases(checkpoints, PHASES, settings, results).items():
        print(f"{phase}: {outcome}", flush=True)
    _step(f"3/4 report into {report}")
    if report_cli.main(["--results", str(results), "--phases", *PHASES, "--out", str(report)]):
        raise SystemExit(2)
    _step("4/4 gate: p3 against every earlier phase")
    policy = reports_dir() / "gate_demo.yaml"
    verdict = gate_cli.main(["--report", str(report / "report.json"), "--policy", str(policy)])
    summary = json.loads((report / "report.json").read_text(encoding="utf-8"))["analysis"]
    print(f"\n== done in {time.perf_counter() - started:.0f} s")
    print(" ".join(summary) if isinstance(summary, list) else summary)
    print(f"gate: {'held' if verdict == 0 else 'regression'} (exit {verdict})")
    print(f"report: {(report / 'report.html').resolve()}")
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compass_eval.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--recipe", type=Path, default=Path("recipes/demo.yaml"))
    parser.add_argument("--max-steps", type=int, default=None, help="shorten every stage (tests)")
    parser.add_argument("--limit", type=float, default=None, help="documents per task (tests)")
    args = parser.parse_args(argv)
    verdict = run_demo(args.out, args.recipe, args.max_steps, args.limit)
    # The demo succeeds whatever the gate says: showing its verdict is the point.
    return 0 if verdict in (0, 1) else verdict


if __name__ == "__main__":
    sys.exit(main())
