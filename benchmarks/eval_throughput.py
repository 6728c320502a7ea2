"""Evaluation speed of `--model compass` against lm-eval's own `hf` model, on identical weights.

Builds a random model (bigger than the tiny preset, so the forward passes dominate), saves it as a
phase checkpoint and its language half as a plain causal-LM directory, and evaluates the task with
both, alternately (best of --repeats; model loading and the task index are left out, they are the
same for both). Checks that the log-likelihoods agree (relative 1e-5) and the metrics are
identical, then prints the wall-time ratio.

    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task cma_basics
    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task cma_basics-1.0-0.1
    python benchmarks/eval_throughput.py --task edinet_fraud --long-edinet 8
    python benchmarks/eval_throughput.py --task edinet_industry --long-edinet 4
    python benchmarks/eval_throughput.py --task edinet_fraud --long-edinet 8 --paper-vocab --batch-size 1

`--long-edinet N` writes N synthetic EDINET-Bench records with long statements for every EDINET
task into a temporary data root; the task's own truncation policy cuts each report to 12,000
characters (~9.4k tokens), which the benchmark model's 16k window holds, as the policy intends.
The binary tasks share that context between two one-token answers, which `hf` also scores in one
row; the industry task has sixteen multi-token answers per context, which `hf` recomputes one by
one. (Where a context overflows the window, lm-eval cuts every context+answer row on its own, so
the sixteen contexts differ and there is nothing left to share: both models recompute.)

`--paper-vocab` widens the output layer to the paper's 98,304-token vocabulary: `hf` turns every
position of a long context into log-probabilities over the whole vocabulary, `compass` only the
continuation's positions. With the tiny tokenizer's 1,024 tokens that difference is small; at
the paper's width it dominates a one-token answer after a long context (use --batch-size 1:
`hf` then holds ~3.7 GB of log-probabilities per 9.4k-token row).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import tempfile
import time
from pathlib import Path

from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from compass_eval.data.edinet import INDUSTRIES, TASKS
from compass_eval.lm import CompassLM
from compass_model.assemble import build_random
from compass_model.checkpoint import export_language_model, save_checkpoint
from compass_model.config import PAPER, TINY

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
        # Holds the EDINET tasks' own truncation (12,000 characters: ~9.4k tokens here) whole.
        "max_position_embeddings": 16384,
    },
)


def _write_long_edinet(root: Path, n_docs: int) -> None:
    """Synthetic records in EDINET-Bench's schema, statements long enough to be truncated."""
    for task in TASKS:
        folder = root / "edinet" / task
        folder.mkdir(parents=True)
        records = _long_records(n_docs)
        if task == "industry_prediction":
            for i, record in enumerate(records):
                del record["label"]
                record["industry"] = INDUSTRIES[i % len(INDUSTRIES)]
        lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
        (folder / "test.jsonl").write_text("".join(lines), encoding="utf-8")


def _long_records(n_docs: int) -> list[dict]:
    rng = random.Random(0)
    items = ["売上高", "営業利益", "経常利益", "資産合計", "負債合計", "純資産合計", "現金及び預金"]
    records = []
    for i in range(n_docs):
        sheet = {
            f"{item}{k}": {"前期": rng.randint(1, 10**6), "当期": rng.randint(1, 10**6)}
            for k in range(60)
            for item in items
        }
        statement = json.dumps(sheet, ensure_ascii=False)
        records.append(
            {
                "meta": json.dumps({"会社名": f"合成株式会社{i}"}, ensure_ascii=False),
                **{sheet_name: statement for sheet_name in ("summary", "bs", "pl", "cf")},
                "text": json.dumps(
                    {"事業の状況": "特記すべき事項はない。" * 50}, ensure_ascii=False
                ),
                "label": i % 2,
                "edinet_code": f"E9{i:04d}",
                "doc_id": f"SYNTH{i:04d}",
            }
        )
    return records


def _evaluate(lm, task: str, limit: int | None, task_manager: TaskManager) -> tuple[float, dict]:
    """Seconds for one whole evaluation of `task` (the task index is built beforehand, once)."""
    start = time.perf_counter()
    out = simple_evaluate(
        model=lm, tasks=[task], limit=limit, log_samples=True, task_manager=task_manager
    )
    return time.perf_counter() - start, out


def _loglikelihoods(out: dict, task: str) -> list[float]:
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    return [float(ll) for s in samples for ll, _ in s["filtered_resps"]]


def _metrics(out: dict, task: str) -> dict:
    return {k: v for k, v in out["results"][task].items() if not k.endswith("alias")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cma_basics")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--long-edinet", type=int, default=0, metavar="N")
    parser.add_argument(
        "--paper-vocab",
        action="store_true",
        help="widen the output layer to the paper's vocabulary (the tiny tokenizer still writes "
        "the ids), so every scored position costs what it costs on the paper's model",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.long_edinet:
            _write_long_edinet(Path(tmp) / "data", args.long_edinet)
            os.environ["COMPASS_DATA_DIR"] = str(Path(tmp) / "data")
        model, processor = build_random(BENCH)
        if args.paper_vocab:
            model.resize_token_embeddings(PAPER.text["vocab_size"])
        checkpoint = save_checkpoint(model, processor, Path(tmp) / "ckpt", {"phase": "bench"})
        language_model = export_language_model(model, processor, Path(tmp) / "lm")
        models = {
            "hf": HFLM(pretrained=str(language_model), device="cpu", batch_size=args.batch_size),
            "compass": CompassLM(pretrained=str(checkpoint), batch_size=args.batch_size),
        }
        task_manager = TaskManager()
        best = {name: float("inf") for name in models}
        outputs = {}
        for _ in range(args.repeats):
            for name, lm in models.items():
                seconds, outputs[name] = _evaluate(lm, args.task, args.limit, task_manager)
                best[name] = min(best[name], seconds)

    answers = {name: _loglikelihoods(out, args.task) for name, out in outputs.items()}
    same = _metrics(outputs["compass"], args.task) == _metrics(outputs["hf"], args.task)
    pairs = list(zip(answers["compass"], answers["hf"], strict=True))
    worst = max(abs(ours - theirs) for ours, theirs in pairs)
    # Long continuations sum many log-probabilities: compare relative to the total's size.
    relative = max(abs(ours - theirs) / max(1.0, abs(theirs)) for ours, theirs in pairs)
    vocabulary = model.config.text_config.vocab_size
    print(
        f"task {args.task}: {len(pairs)} requests, batch size {args.batch_size}, vocabulary {vocabulary:,}"
    )
    print(f"max |Δ loglikelihood| compass vs hf: {worst:.2e} (relative {relative:.1e})")
    print(f"identical metrics: {same}")
    print(f"hf      {best['hf']:.2f} s (best of {args.repeats})")
    print(f"compass {best['compass']:.2f} s (best of {args.repeats})")
    print(
        f"ratio compass/hf: {best['compass'] / best['hf']:.2f}  (hf/compass: {best['hf'] / best['compass']:.2f}x)"
    )
    if relative > 1e-5 or not same:
        raise SystemExit("results differ: the timing comparison is void")


if __name__ == "__main__":
    main()
