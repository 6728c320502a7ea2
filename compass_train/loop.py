"""One stage's optimisation: plain PyTorch under accelerate (DDP/FSDP/DeepSpeed come from its
config), AdamW with warm-up + cosine, gradient accumulation, and resumable step states.

Resume is exact: the data order of each epoch is a function of (seed, epoch), and a step state
holds the trainable tensors, optimiser, scheduler and RNG, written atomically.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from compass_model.errors import CompassInputError
from compass_train.collate import Collator, Example, length_grouped_order
from compass_train.recipe import StageSpec
from compass_train.select import param_groups

STATE_FILE = "state.pt"


@dataclass
class StageResult:
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    wall_time_s: float = 0.0
    resumed_from: int | None = None


def total_steps(stage: StageSpec, examples: int, world: int) -> int:
    micro_per_epoch = math.ceil(examples / (stage.batch_size * world))
    per_epoch = max(1, micro_per_epoch // stage.grad_accum)
    return stage.max_steps or max(1, math.ceil(stage.epochs * per_epoch))


def micro_batches(
    examples: list[Example], stage: StageSpec, seed: int, world: int, rank: int, start: int
) -> Iterator[list[Example]]:
    """This rank's micro-batches from global micro-step `start` on, forever (epochs wrap).

    Every global batch is full (the epoch's order wraps around), so all ranks step together."""
    global_batch = stage.batch_size * world
    per_epoch = math.ceil(len(examples) / global_batch)
    lengths = [len(e.input_ids) for e in examples]
    micro = start
    while True:
        epoch, index = divmod(micro, per_epoch)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        if stage.group_by_length:
            order = length_grouped_order(lengths, global_batch, generator)
        else:
            order = torch.randperm(len(examples), generator=generator).tolist()
        order += order[: per_epoch * global_batch - len(order)]
        while index < per_epoch:
            chunk = order[index * global_batch : (index + 1) * global_batch]
            yield [
                examples[i] for i in chunk[rank * stage.batch_size : (rank + 1) * stage.batch_size]
            ]
            index += 1
            micro += 1


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    step: int,
    result: StageResult,
    recipe: dict,
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    state = {
        "recipe": recipe,
        "step": step,
        "trainable": {n: p.detach().cpu().clone() for n, p in _trainable(model).items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "losses": list(result.losses),
    }
    partial = path / f".{STATE_FILE}.partial"
    torch.save(state, partial)
    os.replace(partial, path / STATE_FILE)


def _load_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    recipe: dict,
) -> tuple[int, list[float]]:
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    if state["recipe"] != recipe:
        raise CompassInputError(
            f"{path / STATE_FILE} was saved by a different stage recipe: rerun without --resume"
        )
    params = _trainable(model)
    with torch.no_grad():
        for name, tensor in state["trainable"].items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["step"], state["losses"]


def train_stage(
    model: nn.Module,
    examples: list[Example],
    collator: Collator,
    stage: StageSpec,
    seed: int,
    accelerator: Accelerator,
    state_dir: Path,
    resume: bool,
    label: str,
) -> StageResult:
    """Trains `model` in place; returns per-step losses (mean over accumulation and processes)."""
    started = time.perf_counter()
    torch.manual_seed(seed + accelerator.process_index)
    optimizer = torch.optim.AdamW(param_groups(model, stage), lr=stage.lr)
    steps = total_steps(stage, len(examples), accelerator.num_processes)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(stage.warmup_ratio * steps), steps
    )
    result = StageResult()
    step = 0
    if resume and (state_dir / STATE_FILE).is_file():
        step, result.losses = _load_state(state_dir, model, optimizer, scheduler, asdict(stage))
        result.resumed_from = step
    # The scheduler stays ours: accelerate's wrapper would step it once per process.
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    batches = micro_batches(
        examples,
        stage,
        seed,
        accelerator.num_processes,
        accelerator.process_index,
        start=step * stage.grad_accum,
    )
    bar = tqdm(
        total=steps,
        initial=step,
        desc=label,
        disable=not accelerator.is_main_process,
        unit="step",
        dynamic_ncols=True,
    )
    while step < steps:
        tick, loss_sum, samples = time.perf_counter(), 0.0, 0
        for micro in range(stage.grad_accum):
            batch = {k: v.to(accelerator.device) for k, v in collator(next(batches)).items()}
            sync = micro == stage.grad_accum - 1
            with nullcontext() if sync else accelerator.no_sync(model):
                loss = model(**batch).loss / stage.grad_accum
                accelerator.backward(loss)
            loss_sum += loss.detach()
            samples += batch["input_ids"].shape[0]
        if stage.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), stage.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        mean_loss = accelerator.reduce(loss_sum, reduction="mean").item()
        result.losses.append(mean_loss)
        rate = samples * accelerator.num_processes / (time.perf_counter() - tick)
        bar.set_postfix(loss=f"{mean_loss:.4f}", samples_s=f"{rate:.1f}")
        bar.update()
        accelerator.log(
            {f"{label}/loss": mean_loss, f"{label}/lr": scheduler.get_last_lr()[0]}, step=step
        )
        if step % stage.save_every == 0 and step < steps:
            if accelerator.is_main_process:
                unwrapped = accelerator.unwrap_model(model)
                _save_state(state_dir, unwrapped, optimizer, scheduler, step, result, asdict(stage))
            accelerator.wait_for_everyone()
    bar.close()
    result.steps = steps
    result.wall_time_s = time.perf_counter() - started
    return result
