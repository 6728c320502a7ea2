"""Trainer overhead: steps/s of a demo stage through `compass_train.loop.train_stage` against a
bare PyTorch loop over the same model, batches and optimiser, measured in the same run.

Stage: the demo's P1-S2 (vision tower + projector fully trained, LoRA on the LLM, three LR
groups) on the tiny model and the bundled VQA data. Each side runs REPEATS times, alternating,
from identical starting weights, after one untimed warm-up each. The CPU is shared, and sharing
only ever slows a run down, so the fastest run per side is compared (medians are printed too).
Goal: ratio >= 0.9.

    python benchmarks/train_throughput.py [--steps 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_cosine_schedule_with_warmup

from compass_model.assemble import build_tiny
from compass_model.checkpoint import save_checkpoint
from compass_train.adapters import adapter_plan
from compass_train.collate import Collator
from compass_train.loop import micro_batches, train_stage
from compass_train.phases import stage_examples, stage_model
from compass_train.recipe import load_recipe
from compass_train.select import param_groups

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def bare_loop(model, examples, collator, stage, seed: int) -> None:
    """What a hand-written loop does: same batches, AdamW groups, schedule, clipping."""
    optimizer = torch.optim.AdamW(param_groups(model, stage), lr=stage.lr)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(stage.warmup_ratio * stage.max_steps), stage.max_steps
    )
    batches = micro_batches(examples, stage, seed, world=1, rank=0, start=0)
    model.train()
    for _ in range(stage.max_steps):
        loss = model(**collator(next(batches))).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), stage.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the trainer reads the loss every step too (for the progress bar)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    stage = replace(recipe.phase("p1").stages[1], max_steps=args.steps, save_every=10**9)
    plan = adapter_plan(stage, "cpu")
    accelerator = Accelerator(cpu=True)
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = build_tiny(recipe.seed)
        source = save_checkpoint(model, processor, Path(tmp) / "p0", {"phase": "p0"})
        examples, _, _ = stage_examples(recipe, stage, processor)
        collator = Collator(processor)
        times: dict[str, list[float]] = {"compass": [], "bare": []}
        for repeat in range(args.repeats + 1):
            for side in ("compass", "bare"):
                torch.manual_seed(recipe.seed)
                model, _, _ = stage_model(source, stage, plan, torch.float32, "cpu", "bench")
                started = time.perf_counter()
                if side == "compass":
                    train_stage(
                        model, examples, collator, stage, recipe.seed, accelerator,
                        Path(tmp) / f"state{repeat}", resume=False, label="bench",
                    )  # fmt: skip
                    accelerator.free_memory()  # prepared models must not pile up over repeats
                else:
                    bare_loop(model, examples, collator, stage, recipe.seed)
                if repeat > 0:  # the first round warms up allocators and lazy imports
                    times[side].append(time.perf_counter() - started)
    best = {side: args.steps / min(t) for side, t in times.items()}
    median = {side: args.steps / statistics.median(t) for side, t in times.items()}
    print(f"stage p1/s2 (tiny model, batch {stage.batch_size}, {args.steps} steps, CPU)")
    for side in times:
        runs = ", ".join(f"{t:.2f}s" for t in times[side])
        print(f"  {side:8s} best {best[side]:6.2f} steps/s, median {median[side]:6.2f}  ({runs})")
    print(
        f"ratio compass/bare = {best['compass'] / best['bare']:.3f} (best runs; "
        f"medians {median['compass'] / median['bare']:.3f})  goal >= 0.9"
    )


if __name__ == "__main__":
    main()
