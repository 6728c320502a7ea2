"""Time `compass-report` on 4 phases x 9 tasks x 10,000 logged samples at the default 10,000 resamples.

The baseline is lm-eval's own `lm_eval.api.metrics.bootstrap_stderr` on the same per-sample data
and the same number of resamples (lm-eval gives corpus metrics such as ROC-AUC no stderr at all;
here it is handed the same statistic functions the tasks aggregate with). The printed ratio is
baseline seconds / compass seconds for the whole report (loading, bootstrap, paired tests, plots,
rendering). Usage: python benchmarks/report_speed.py [--docs 10000] [--iters 10000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

PHASES = ["p0", "p1", "p2", "p3"]
# task -> (metric, filters, number of choices; 0 = generation)
TASKS = {
    "gsm8k": ("exact_match", ["strict-match", "flexible-extract"], 0),
    "edinet_earnings": ("roc_auc", ["none"], 2),
    "edinet_fraud": ("roc_auc", ["none"], 2),
    "edinet_industry": ("acc", ["none"], 16),
    "chabsa": ("f1", ["none"], 2),
    "cma_basics": ("acc", ["none"], 4),
    "cpa_audit": ("acc", ["none"], 6),
    "fp2": ("acc", ["none"], 4),
    "security_sales_1": ("acc", ["none"], 3),
}
CHOICE_LISTS = {
    "edinet_earnings": ["No", "Yes"],
    "edinet_fraud": ["No", "Yes"],
    "edinet_industry": [f"industry {i}" for i in range(16)],
    "chabsa": ["positive", "negative"],
}
AGGREGATION = {
    "acc": "mean",
    "exact_match": "mean",
    "roc_auc": "roc_auc",
    "f1": "2class_adjusted_macro_f1_score_for_chabsa",
}


def lm_eval_mean(xs):
    return sum(xs) / len(xs)


def lm_eval_roc_auc(items):
    labels, scores = zip(*items, strict=True)
    return roc_auc_score(labels, scores)


def lm_eval_chabsa_f1(items):
    golds, preds = zip(*items, strict=True)
    return f1_score(golds, preds, average="macro") * 1.5


STATISTIC = {"acc": lm_eval_mean, "exact_match": lm_eval_mean, "roc_auc": lm_eval_roc_auc}
STATISTIC["f1"] = lm_eval_chabsa_f1


def _per_sample(metric: str, n: int, skill: float, rng: np.random.Generator) -> list:
    if metric == "roc_auc":
        labels = rng.integers(0, 2, n)
        scores = np.clip(0.5 + skill * (labels - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        return [[int(y), round(float(s), 6)] for y, s in zip(labels, scores, strict=True)]
    if metric == "f1":
        gold = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < 0.5 + skill, gold, 1 - gold)
        return [[int(g), int(p)] for g, p in zip(gold, pred, strict=True)]
    return [float(v) for v in (rng.random(n) < 0.3 + skill)]


def _score(metric: str, values: list) -> float:
    return float(STATISTIC[metric](values))


def write_phase(root: Path, phase: str, k: int, docs: int) -> dict[str, list]:
    """One phase's results JSON and sample logs, laid out as `lm_eval --output_path` does."""
    rng = np.random.default_rng(100 + k)
    folder = root / phase / "compass"
    folder.mkdir(parents=True)
    date_id = f"2026-01-0{k + 1}T00-00-00.000000"
    results, configs, kept = {}, {}, {}
    for task, (metric, filters, choices) in TASKS.items():
        values = _per_sample(metric, docs, 0.05 * k, rng)
        kept[task] = values
        score = _score(metric, values)
        results[task] = {"alias": task}
        for f in filters:
            results[task][f"{metric},{f}"] = score
            results[task][f"{metric}_stderr,{f}"] = "N/A"
        configs[task] = {
            "task": task,
            "output_type": "generate_until" if choices == 0 else "multiple_choice",
            # lm-eval records a fixed choice list as a list, a per-document one as source code
            "doc_to_choice": CHOICE_LISTS.get(task, "def choices(doc): return doc['choices']"),
            "metric_list": [{"metric": metric, "aggregation": AGGREGATION[metric]}],
            "metadata": {"version": 1.0, "data_fingerprint": f"sha256:{task}", "data_root": "/d"},
        }
        with open(folder / f"samples_{task}_{date_id}.jsonl", "w", encoding="utf-8") as out:
            for doc_id, value in enumerate(values):
                prompt = f"問題 {doc_id}: 次の財務諸表について答えてください。\n回答:"
                arguments = (
                    {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["\n\n"]}}}
                    if choices == 0
                    else {
                        f"gen_args_{j}": {"arg_0": prompt, "arg_1": f" {j}"} for j in range(choices)
                    }
                )
                for f in filters:
                    entry = {
                        "doc_id": doc_id,
                        "doc": {"id": doc_id, "question": prompt, "answer": "1"},
                        "target": "1",
                        "arguments": arguments,
                        "resps": [[["-1.25", "False"]] for _ in arguments],
                        "filtered_resps": [["-1.25", "False"] for _ in arguments],
                        "filter": f,
                        "metrics": [metric],
                        "doc_hash": f"{doc_id:064x}",
                        "prompt_hash": f"{doc_id:064x}",
                        "target_hash": "0" * 64,
                        metric: value,
                    }
                    out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    document = {
        "results": results,
        "configs": configs,
        "versions": dict.fromkeys(TASKS, 1.0),
        "n-shot": dict.fromkeys(TASKS, 0),
        "config": {"model": "compass", "limit": None},
        "date": 1767225600.0 + k,
    }
    (folder / f"results_{date_id}.json").write_text(json.dumps(document), encoding="utf-8")
    return kept


def time_lm_eval(series: list[tuple[str, list]], iters: int) -> float:
    from lm_eval.api.metrics import bootstrap_stderr

    os.environ.setdefault("DISABLE_MULTIPROC", "1")  # its pool runs one chunk of 1,000 anyway
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for metric, values in series:
            bootstrap_stderr(STATISTIC[metric], values, iters)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--iters", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time lm-eval on one phase and multiply by the number of phases",
    )
    args = parser.parse_args()
    from compass_eval.analysis.report_cli import main as report

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kept = {p: write_phase(root / "runs", p, k, args.docs) for k, p in enumerate(PHASES)}
        size = sum(f.stat().st_size for f in (root / "runs").rglob("*")) / 2**20
        print(f"data: {len(PHASES)} phases x {len(TASKS)} tasks x {args.docs} docs, {size:.0f} MiB")
        argv = ["--results", str(root / "runs"), "--phases", *PHASES, "--iters", str(args.iters)]
        timings, cpu = [], []
        for repeat in range(args.repeats):
            out = root / f"report{repeat}"
            start, start_cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                code = report([*argv, "--out", str(out)])
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            if code != 0:
                sys.exit(f"compass-report failed with exit status {code}")
        made = json.loads((root / "report0" / "report.json").read_text())
        with_ci = sum(1 for e in made["benchmarks"].values() if e["ci"])
        compass = statistics.median(timings)
        print(
            f"compass-report, whole report ({args.iters} resamples, {with_ci} benchmarks with "
            f"intervals, paired tests for all phase pairs): {compass:.2f} s "
            f"(median of {args.repeats}: {', '.join(f'{t:.2f}' for t in timings)}; "
            f"CPU time {statistics.median(cpu):.2f} s; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores)"
        )
        phases = PHASES[:1] if args.quick else PHASES
        series = [(TASKS[t][0], kept[p][t]) for p in phases for t in TASKS]
        baseline = time_lm_eval(series, args.iters) * (len(PHASES) / len(phases))
        label = "extrapolated from one phase" if args.quick else "all series"
        print(
            f"lm_eval.api.metrics.bootstrap_stderr, the {len(PHASES) * len(TASKS)} per-phase series "
            f"only ({label}): {baseline:.2f} s"
        )
        print(f"ratio lm-eval / compass-report: {baseline / compass:.1f}x")


if __name__ == "__main__":
    main()
