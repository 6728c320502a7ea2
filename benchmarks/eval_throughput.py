"""Evaluation speed of `--model compass` against lm-eval's own `hf` model, on identical weights.

Builds a random model (bigger than the tiny preset, so the forward passes dominate), saves it as a
phase checkpoint and its language half as a plain causal-LM directory, builds the task's requests
once, and runs them through both models alternately (best of --repeats; loading and task building
are left out, they are the same for both). Checks that the log-likelihoods agree (relative 1e-5)
and the metrics are identical, then prints the wall-time ratio compass/hf.

    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task cma_basics
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from compass_eval.lm import CompassLM
from compass_model.assemble import build_random
from compass_model.checkpoint import export_language_model, save_checkpoint
from compass_model.config import TINY

BENCH = dataclasses.replace(
    TINY,
    name="bench",
    text={
        **TINY.text,
        "hidden_size": 512,
        "intermediate_size": 1408,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
    },
)


def _requests(task_name: str, limit: int | None):
    task = TaskManager().load([task_name])["tasks"][task_name]
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return task.instances


def _metrics(model, task: str, limit: int | None) -> dict:
    results = simple_evaluate(model=model, tasks=[task], limit=limit)["results"][task]
    return {k: v for k, v in results.items() if not k.endswith("alias")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cma_basics")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model, processor = build_random(BENCH)
        checkpoint = save_checkpoint(model, processor, Path(tmp) / "ckpt", {"phase": "bench"})
        language_model = export_language_model(model, processor, Path(tmp) / "lm")
        models = {
            "hf": HFLM(pretrained=str(language_model), device="cpu", batch_size=args.batch_size),
            "compass": CompassLM(pretrained=str(checkpoint), batch_size=args.batch_size),
        }
        requests = _requests(args.task, args.limit)
        kind = requests[0].request_type
        best = {name: float("inf") for name in models}
        answers = {}
        for _ in range(args.repeats):
            for name, lm in models.items():
                start = time.perf_counter()
                answers[name] = getattr(lm, kind)(requests, disable_tqdm=True)
                best[name] = min(best[name], time.perf_counter() - start)
        metrics = {name: _metrics(lm, args.task, args.limit) for name, lm in models.items()}

    pairs = list(zip(answers["compass"], answers["hf"], strict=True))
    worst = max(abs(ours[0] - theirs[0]) for ours, theirs in pairs)
    # Long continuations sum many log-probabilities: compare relative to the total's size.
    relative = max(abs(ours[0] - theirs[0]) / max(1.0, abs(theirs[0])) for ours, theirs in pairs)
    same = metrics["compass"] == metrics["hf"]
    print(f"task {args.task}: {len(requests)} {kind} requests, batch size {args.batch_size}")
    print(f"max |Δ loglikelihood| compass vs hf: {worst:.2e} (relative {relative:.1e})")
    print(f"identical metrics: {same}")
    print(f"hf      {best['hf']:.2f} s (best of {args.repeats})")
    print(f"compass {best['compass']:.2f} s (best of {args.repeats})")
    print(f"ratio compass/hf: {best['compass'] / best['hf']:.2f}")
    if relative > 1e-5 or not same:
        raise SystemExit("results differ: the timing comparison is void")


if __name__ == "__main__":
    main()
