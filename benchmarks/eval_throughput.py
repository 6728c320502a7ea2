"""Evaluation speed of `--model compass` against lm-eval's own `hf` model, on identical weights.

Builds a random model (bigger than the tiny preset, so the forward passes dominate), saves it as a
phase checkpoint and its language half as a plain causal-LM directory, and evaluates the task with
both at each batch size, alternately (best of --repeats; model loading and the task index are left
out, they are the same for both). Threads are pinned (--threads, default 1) so that a busy machine
moves both sides alike; CPU seconds are printed beside wall seconds. Checks that the answers agree
(log-likelihoods within relative 1e-5 and identical metrics; for generation tasks, identical
greedy outputs), then prints the ratios, and for `compass` the tokens it ran through the model
against the distinct-prefix floor (each question's context once, plus every distinct prefix of
its answers).

    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task cma_basics-1.0-0.1 --batch-sizes 1 8 32
    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task cpa_audit-1.0-0.1 --limit 60 --batch-sizes 1 8 32
    COMPASS_DATA_DIR=../shared/data python benchmarks/eval_throughput.py --task gsm8k_cot_xml --limit 32 --batch-sizes 1 8 --gen-kwargs max_gen_toks=64
    python benchmarks/eval_throughput.py --task edinet_fraud --long-edinet 8
    python benchmarks/eval_throughput.py --task edinet_industry --long-edinet 4
    python benchmarks/eval_throughput.py --task edinet_fraud --long-edinet 8 --paper-vocab --batch-sizes 1

For a generation task the table also gives compass at each batch size against compass at the
first one (batching's own gain).

`--long-edinet N` writes N synthetic EDINET-Bench records with long statements for every EDINET
task into a temporary data root; the task's own truncation policy cuts each report to the budget it
derives from the model's window (~3.1k tokens for the industry task's sixteen answers). The binary
tasks share that context between two one-token answers, which `hf` also scores in one row; the
industry task has sixteen multi-token answers per context, which `hf` recomputes one by one.

Peak memory is the largest resident-set size above the level at the start of each evaluation,
sampled every 5 ms from /proc (Linux): what the evaluation itself allocates, the weights left out.

`--paper-vocab` widens the output layer to the paper's 98,304-token vocabulary: `hf` turns every
position of a long context into log-probabilities over the whole vocabulary, `compass` only the
continuation's positions. With the tiny tokenizer's 1,024 tokens that difference is small; at
the paper's width it dominates a one-token answer after a long context (use --batch-sizes 1:
`hf` then holds ~3.7 GB of log-probabilities per 9.4k-token row).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from compass_eval.data import edinet
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
        # Holds the EDINET tasks' report budget (max_position_embeddings − 1,024 characters) whole.
        "max_position_embeddings": 16384,
    },
)


def _write_long_edinet(root: Path, n_docs: int) -> None:
    """Synthetic records in EDINET-Bench's schema, statements long enough to be truncated."""
    for task in TASKS:
        path = root / edinet.relative_file(task)  # industry is EDINET-Bench's train split
        path.parent.mkdir(parents=True)
        records = _long_records(n_docs)
        if task == "industry_prediction":
            for i, record in enumerate(records):
                del record["label"]
                record["industry"] = INDUSTRIES[i % len(INDUSTRIES)]
        lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
        path.write_text("".join(lines), encoding="utf-8")


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


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakResident:
    """Largest resident-set size above the starting level while the block runs (5 ms samples)."""

    def __enter__(self) -> _PeakResident:
        self.start = self.peak = _resident_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _resident_bytes())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _resident_bytes())

    @property
    def added(self) -> int:
        return self.peak - self.start


def _evaluate(
    lm, task: str, limit: int | None, gen_kwargs: str | None, task_manager: TaskManager
) -> tuple[float, float, int, dict]:
    """Wall and CPU seconds and peak added memory for one whole evaluation of `task` (the task
    index is built beforehand, once)."""
    wall, cpu = time.perf_counter(), time.process_time()
    with _PeakResident() as memory:
        out = simple_evaluate(
            model=lm,
            tasks=[task],
            limit=limit,
            gen_kwargs=gen_kwargs,
            log_samples=True,
            task_manager=task_manager,
        )
    return time.perf_counter() - wall, time.process_time() - cpu, memory.added, out


def _answers(out: dict, task: str) -> list:
    """Per request, in document order: the log-likelihood, or the generated text."""
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    answers = [resp[0] for s in samples for resp in s["resps"]]
    return [answer if isinstance(answer, str) else float(answer[0]) for answer in answers]


def _metrics(out: dict, task: str) -> dict:
    return {k: v for k, v in out["results"][task].items() if not k.endswith("alias")}


def _disagreement(ours: dict, theirs: dict, task: str) -> str | None:
    """Why the two runs' answers differ, or None when they agree."""
    if _metrics(ours, task) != _metrics(theirs, task):
        return "metrics differ"
    pairs = list(zip(_answers(ours, task), _answers(theirs, task), strict=True))
    if pairs and isinstance(pairs[0][0], str):
        same = sum(a == b for a, b in pairs)
        return None if same == len(pairs) else f"{len(pairs) - same} of {len(pairs)} outputs differ"
    # Long continuations sum many log-probabilities: compare relative to the total's size.
    relative = max(abs(a - b) / max(1.0, abs(b)) for a, b in pairs)
    return None if relative <= 1e-5 else f"log-likelihoods differ (relative {relative:.1e})"


def _set_batch_size(lm, size: int) -> None:
    if isinstance(lm, HFLM):
        lm.batch_size_per_gpu = size
    else:
        lm.batch_size = size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cma_basics")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both models")
    parser.add_argument("--gen-kwargs", default=None, help="as lm_eval's --gen_kwargs")
    parser.add_argument("--long-edinet", type=int, default=0, metavar="N")
    parser.add_argument(
        "--paper-vocab",
        action="store_true",
        help="widen the output layer to the paper's vocabulary (the tiny tokenizer still writes "
        "the ids), so every scored position costs what it costs on the paper's model",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

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
            "hf": HFLM(pretrained=str(language_model), device="cpu"),
            "compass": CompassLM(pretrained=str(checkpoint)),
        }
        task_manager = TaskManager()
        rows = []
        for size in args.batch_sizes:
            best = {name: (float("inf"), float("inf")) for name in models}
            peak = dict.fromkeys(models, 0)
            outputs = {}
            for _ in range(args.repeats):
                for name, lm in models.items():
                    _set_batch_size(lm, size)
                    scorer = models["compass"].scorer
                    scorer.tokens_computed = scorer.tokens_needed = 0
                    wall, cpu, added, outputs[name] = _evaluate(
                        lm, args.task, args.limit, args.gen_kwargs, task_manager
                    )
                    best[name] = min(best[name], (wall, cpu))
                    peak[name] = max(peak[name], added)
            problem = _disagreement(outputs["compass"], outputs["hf"], args.task)
            if problem:
                raise SystemExit(f"batch size {size}: {problem}: the timing comparison is void")
            tokens = (scorer.tokens_computed, scorer.tokens_needed)
            rows.append((size, best, peak, tokens, len(_answers(outputs["hf"], args.task))))

    vocabulary = model.config.text_config.vocab_size
    print(
        f"task {args.task}: {rows[0][4]} requests, vocabulary {vocabulary:,}, "
        f"{args.threads} thread(s); answers agree at every batch size"
    )
    first_wall, first_cpu = rows[0][1]["compass"]
    print(
        f"batch  hf wall/cpu s     compass wall/cpu s   hf/compass wall/cpu   "
        f"compass b{rows[0][0]}/b wall/cpu   peak MiB hf/compass   compass tokens/floor"
    )
    for size, best, peak, (computed, needed), _ in rows:
        (hf_wall, hf_cpu), (our_wall, our_cpu) = best["hf"], best["compass"]
        floor = f"{computed:,}/{needed:,} = {computed / needed:.2f}" if needed else "-"
        print(
            f"{size:>5}  {hf_wall:7.2f}/{hf_cpu:7.2f}   {our_wall:7.2f}/{our_cpu:7.2f}    "
            f"{hf_wall / our_wall:6.2f}x/{hf_cpu / our_cpu:5.2f}x       "
            f"{first_wall / our_wall:6.2f}x/{first_cpu / our_cpu:5.2f}x        "
            f"{peak['hf'] / 2**20:7.0f}/{peak['compass'] / 2**20:<7.0f}       {floor}"
        )


if __name__ == "__main__":
    main()
