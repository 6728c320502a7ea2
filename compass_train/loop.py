"""One stage's optimisation: plain PyTorch under accelerate (DDP/FSDP/DeepSpeed come from its
config), AdamW with warm-up + cosine, accumulation through `accelerator.accumulate`, and
resumable step states through `accelerator.save_state` / `load_state`.

Resume is exact: the data order of each epoch is a function of (seed, epoch), and a step state
holds the trained tensors, optimiser, scheduler and every process's RNG.

Every step goes to the run's trackers on one step axis for the whole run, with the learning rate
of each parameter group (`compass_train.trackers`).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, DistributedType
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from compass_model.errors import CompassInputError
from compass_train.collate import Collator, Example, length_grouped_order
from compass_train.recipe import StageSpec
from compass_train.select import group_of, param_groups
from compass_train.trackers import run_log

LATEST = "LATEST"
PROGRESS_FILE = "progress.pt"


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


def _trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def _keep_trainable(models: list[nn.Module], weights: list[dict], output_dir: str) -> None:
    """accelerate's save-state hook: a step state holds only the trained tensors (the frozen,
    possibly 4-bit base is the stage's input checkpoint). FSDP and DeepSpeed save their own
    shards: `weights` is empty under them."""
    for index, state in enumerate(weights):
        keep = _trainable_names(models[index])
        weights[index] = {k: v for k, v in state.items() if k in keep}


def trained_tensors(model: nn.Module, accelerator: Accelerator) -> dict[str, torch.Tensor]:
    """The trained tensors, gathered whole on the main process (FSDP full state dict, ZeRO-3);
    every process must call it. Names are those of the unwrapped model."""
    state = accelerator.get_state_dict(model)
    keep = _trainable_names(accelerator.unwrap_model(model))
    return {k: v.detach().cpu() for k, v in state.items() if k in keep}


def lr_group_index(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Each trained parameter group (vision, projector, llm; `other` outside them) with the
    index of an optimiser group holding it: the recipe sets learning rates by group, so every
    optimiser group of a parameter group has the same rate."""
    index = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
    return {
        group_of(name) or "other": index[id(p)]
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def may_skip_parameters(model: nn.Module, examples: list[Example]) -> bool:
    """Whether some batches leave trainable parameters out of the graph: a text-only example
    in a stage that trains the vision tower or projector (or LoRA on them)."""
    image_side = any(
        p.requires_grad and group_of(n) in ("vision", "projector")
        for n, p in model.named_parameters()
    )
    return image_side and any(not e.images for e in examples)


def _save_state(
    accelerator: Accelerator,
    state_dir: Path,
    scheduler: LRScheduler,
    step: int,
    result: StageResult,
    recipe: dict,
) -> None:
    """accelerate's state (trained tensors, optimiser, every process's RNG) in a folder of its
    own; `LATEST` names it once it is whole, so a kill at any point leaves a usable state."""
    folder = state_dir / f"step-{step:07d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        progress = {
            "recipe": recipe,
            "step": step,
            "scheduler": scheduler.state_dict(),
            "losses": list(result.losses),
        }
        torch.save(progress, folder / PROGRESS_FILE)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        partial = state_dir / f".{LATEST}.partial"
        partial.write_text(folder.name)
        os.replace(partial, state_dir / LATEST)
        for old in state_dir.glob("step-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_state(
    accelerator: Accelerator, state_dir: Path, scheduler: LRScheduler, recipe: dict
) -> tuple[int, list[float]]:
    folder = state_dir / (state_dir / LATEST).read_text().strip()
    progress = torch.load(folder / PROGRESS_FILE, map_location="cpu", weights_only=True)
    if progress["recipe"] != recipe:
        raise CompassInputError(
            f"{folder} was saved by a different stage recipe: rerun without --resume"
        )
    accelerator.load_state(str(folder), strict=False)
    scheduler.load_state_dict(progress["scheduler"])
    return progress["step"], progress["losses"]


def _supervised_tokens(batches: list[dict[str, torch.Tensor]], accelerator: Accelerator) -> int:
    """Tokens the loss covers in one optimiser step, over every micro-batch and process."""
    local = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    total = accelerator.reduce(torch.tensor(local, device=accelerator.device), reduction="sum")
    return max(1, int(total.item()))


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
) -> tuple[nn.Module, StageResult]:
    """Trains `model`; returns it as prepared (for `trained_tensors`) and the per-step losses.

    The loss of a step is the mean over every supervised token of its global batch (all
    micro-batches, all processes), so N processes at batch b train as one at batch N*b.
    """
    started = time.perf_counter()
    torch.manual_seed(seed + accelerator.process_index)
    optimizer = torch.optim.AdamW(param_groups(model, stage), lr=stage.lr)
    log = run_log(accelerator).stage(label, lr_group_index(model, optimizer))
    steps = total_steps(stage, len(examples), accelerator.num_processes)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(stage.warmup_ratio * steps), steps
    )
    accelerator.gradient_accumulation_steps = stage.grad_accum
    # DDP must be told when a batch may leave trainable parameters out of the graph; it then
    # reduces zeros for them on that process (and leaves the gradient unset when no process
    # used them, as one process would). The cost, one graph traversal per step, is only paid
    # by such stages. FSDP and DeepSpeed handle unused parameters themselves.
    accelerator.ddp_handler = DistributedDataParallelKwargs(
        find_unused_parameters=may_skip_parameters(model, examples)
    )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # No dataloader goes through `prepare`: DeepSpeed learns the stage's batch shape here.
        config = accelerator.state.deepspeed_plugin.deepspeed_config
        config["train_micro_batch_size_per_gpu"] = stage.batch_size
        config["gradient_accumulation_steps"] = stage.grad_accum
        config["gradient_clipping"] = stage.max_grad_norm
        config.pop("train_batch_size", None)
    # The scheduler stays ours: accelerate's wrapper would step it once per process.
    model, optimizer = accelerator.prepare(model, optimizer)
    hook = accelerator.register_save_state_pre_hook(_keep_trainable)
    result = StageResult()
    step = 0
    if resume and (state_dir / LATEST).is_file():
        step, result.losses = _load_state(accelerator, state_dir, scheduler, asdict(stage))
        result.resumed_from = step
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
    # accelerate divides each micro-batch loss by the accumulation steps, DDP averages over
    # processes: the scale undoes both, leaving the sum over tokens / the global token count.
    scale = accelerator.num_processes * stage.grad_accum
    while step < steps:
        tick = time.perf_counter()
        step_batches = [collator(next(batches)) for _ in range(stage.grad_accum)]
        tokens = _supervised_tokens(step_batches, accelerator)
        loss_sum = torch.zeros((), device=accelerator.device)
        for micro in step_batches:
            batch = {k: v.to(accelerator.device) for k, v in micro.items()}
            with accelerator.accumulate(model):
                loss = model(**batch, num_items_in_batch=tokens).loss
                accelerator.backward(loss * scale)
                if accelerator.sync_gradients and stage.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), stage.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
        lrs = scheduler.get_last_lr()  # the rates this step used
        scheduler.step()
        step += 1
        mean_loss = accelerator.reduce(loss_sum, reduction="sum").item()
        result.losses.append(mean_loss)
        samples = sum(b["input_ids"].shape[0] for b in step_batches) * accelerator.num_processes
        bar.set_postfix(
            loss=f"{mean_loss:.4f}", samples_s=f"{samples / (time.perf_counter() - tick):.1f}"
        )
        bar.update()
        log.step(step, mean_loss, lrs)
        if step % stage.save_every == 0 and step < steps:
            _save_state(accelerator, state_dir, scheduler, step, result, asdict(stage))
    bar.close()
    hook.remove()
    result.steps = steps
    result.wall_time_s = time.perf_counter() - started
    return model, result
