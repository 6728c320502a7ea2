"""The phase chain: P0 assembled once, then each phase from its parent's checkpoint, stage by
stage, into an atomically written checkpoint with its manifest, adapters and loss curves.

Work in progress lives under `<out>/.work/<phase>/` (stage results, resumable step states), so a
killed run leaves no directory that looks like a phase.

Each LoRA stage's adapter (`<phase>/adapters/<stage>/`) applies to the weights that stage started
from: the parent checkpoint for a phase's first stage, otherwise the previous stage's merged
result, which the phase keeps whole at `<phase>/stages/<previous stage>/` (a full model copy, so
that every adapter's base is a directory that outlives the run). Base paths are absolute: moving
the checkpoints means pointing the adapters at their new place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedType
from transformers import AutoProcessor, LlavaForConditionalGeneration, LlavaProcessor

from compass_model.assemble import assemble, build_on_meta, build_tiny
from compass_model.atomic import staged_directory
from compass_model.checkpoint import MANIFEST, read_manifest, save_checkpoint, write_manifest
from compass_model.config import preset
from compass_model.dtypes import torch_dtype
from compass_model.errors import CompassInputError
from compass_train.adapters import (
    AdapterPlan,
    adapter_plan,
    adapter_summary,
    load_base,
    point_at_base,
    with_trained,
    wrap,
)
from compass_train.collate import Collator, Example, encode
from compass_train.loop import train_stage, trained_tensors
from compass_train.manifest import phase_manifest
from compass_train.plots import save_loss_curve
from compass_train.recipe import ROOT_PHASE, PhaseSpec, Recipe, RunOptions, StageSpec
from compass_train.records import fingerprint, iter_records, load_records
from compass_train.select import Selection, count_trainable, freeze_all_but, select

WORK = ".work"
# Inside a phase checkpoint: earlier stages' merged results that later adapters apply to.
STAGES = "stages"


def finished(path: Path) -> dict[str, Any] | None:
    """The manifest of a finished phase checkpoint, None when there is none."""
    return read_manifest(path) if (path / MANIFEST).is_file() else None


def made_by(manifest: dict[str, Any], recipe: Recipe, phase: PhaseSpec) -> bool:
    """Whether a finished checkpoint is what `phase` of `recipe` would train now: the same stage
    recipes on data with the same fingerprints (a changed learning rate or training file means
    the old checkpoint answers another question)."""
    done = manifest.get("stages", [])
    if [stage["recipe"] for stage in done] != [asdict(stage) for stage in phase.stages]:
        return False
    recorded = [data["sha256"] for stage in done for data in stage["data"]]
    now = [fingerprint(recipe.data_path(entry))["sha256"] for s in phase.stages for entry in s.data]
    return recorded == now


def phases_to_run(recipe: Recipe, options: RunOptions) -> list[str]:
    names = [ROOT_PHASE] + [p.name for p in recipe.phases]
    if options.only is None:
        return names
    if options.only == ROOT_PHASE:
        return [ROOT_PHASE]
    phase = recipe.phase(options.only)
    parent_dir = options.out / phase.parent
    if finished(parent_dir) is None:
        raise CompassInputError(
            f"--only {phase.name}: its parent checkpoint {parent_dir} does not exist (or is "
            f"unfinished); run phase {phase.parent} first"
        )
    return [phase.name]


def preflight(recipe: Recipe, names: list[str], device: str) -> dict[str, AdapterPlan]:
    """Every check that needs no training, before anything is written: module names against the
    architecture (built on the meta device), data files, and the 4-bit policy."""
    model = build_on_meta(preset(recipe.model.preset))
    plans = {}
    for phase in recipe.phases:
        if phase.name not in names:
            continue
        for stage in phase.stages:
            where = f"phase {phase.name!r}, stage {stage.name!r}"
            select(model, stage, where)
            for entry in stage.data:
                for _ in iter_records(recipe.data_path(entry)):
                    pass
            plans[f"{phase.name}/{stage.name}"] = adapter_plan(stage, device)
    return plans


def build_p0(recipe: Recipe) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """The untouched model: the seeded tiny model, or the preset's pretrained backbones."""
    config = preset(recipe.model.preset)
    if config.vision_backbone is None and recipe.model.vision_backbone is None:
        return build_tiny(recipe.seed)
    return assemble(
        config,
        recipe.model.vision_backbone,
        recipe.model.language_model,
        dtype=torch_dtype(recipe.model.dtype),
    )


def stage_examples(
    recipe: Recipe, stage: StageSpec, processor: LlavaProcessor
) -> tuple[list[Example], list[dict[str, Any]], int]:
    """Encoded examples of every data set of the stage, their fingerprints, and how many records
    were left out (images in a text-only stage, or too long to keep every image token)."""
    examples, prints, dropped = [], [], 0
    for entry in stage.data:
        path = recipe.data_path(entry)
        prints.append(fingerprint(path))
        for record in load_records(path, streaming=True):
            example = None
            if not (stage.text_only and record["images"]):
                example = encode(record, processor, stage.max_length)
            if example is None:
                dropped += 1
            else:
                examples.append(example)
    if not examples:
        raise CompassInputError(f"stage {stage.name!r}: no usable example in {stage.data}")
    return examples, prints, dropped


def stage_model(
    source: Path,
    stage: StageSpec,
    plan: AdapterPlan,
    dtype: torch.dtype,
    device: str | torch.device,
    where: str,
    autocast: bool = False,
    sharded: bool = False,
) -> tuple[torch.nn.Module, Selection, dict[str, int]]:
    """The model a stage optimises: its base (4-bit for QLoRA), frozen except what the stage
    trains, LoRA-wrapped where it asks; plus the trainable-parameter counts by group."""
    model = load_base(source, dtype, device, quantised=plan.kind == "qlora", sharded=sharded)
    selection = select(model, stage, where)
    counts = count_trainable(model, selection, stage.lora.r if stage.lora else 0)
    freeze_all_but(model, selection.train)
    if autocast:
        # AdamW on bf16/fp16 weights drops small updates: under autocast, trained tensors keep
        # float32 masters (the checkpoint is saved in `dtype` again).
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.float()
    if stage.gradient_checkpointing:
        model.gradient_checkpointing_enable({"use_reentrant": False})
    if stage.lora:
        trained = [p for p in model.parameters() if p.requires_grad]
        model = wrap(model, stage.lora, selection.lora_targets, plan, stage.gradient_checkpointing)
        for parameter in trained:  # peft freezes what it does not wrap
            parameter.requires_grad_(True)
    return model, selection, counts


def shards_parameters(accelerator: Accelerator) -> bool:
    """FSDP and ZeRO-3 split every parameter over the processes (4-bit ones included)."""
    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    plugin = accelerator.state.deepspeed_plugin
    return accelerator.distributed_type == DistributedType.DEEPSPEED and plugin.zero_stage == 3


def launcher_mismatch(accelerator: Accelerator) -> str | None:
    """What the launch config asked for and accelerate does not do: on a machine without GPUs,
    accelerate 1.15 runs an FSDP config as plain DDP (or one process) without a word."""
    for variable, kind in (
        ("ACCELERATE_USE_FSDP", DistributedType.FSDP),
        ("ACCELERATE_USE_DEEPSPEED", DistributedType.DEEPSPEED),
    ):
        if os.environ.get(variable, "").lower() == "true" and accelerator.distributed_type != kind:
            return (
                f"the launch config asks for {kind.value}, but accelerate runs "
                f"{accelerator.distributed_type.value} here (it shards only on GPUs)"
            )
    return None


class PhaseRunner:
    """Runs the phases of one recipe into `options.out` on this process's accelerator."""

    def __init__(self, recipe: Recipe, options: RunOptions, accelerator: Accelerator) -> None:
        self.recipe = recipe
        self.options = options
        self.accelerator = accelerator
        self.dtype = torch_dtype(recipe.model.dtype)

    def run(self) -> list[Path]:
        names = phases_to_run(self.recipe, self.options)
        mismatch = launcher_mismatch(self.accelerator)
        if mismatch:
            self._announce(f"warning: {mismatch}")
        plans = preflight(self.recipe, names, str(self.accelerator.device))
        written = []
        for name in names:
            if name == ROOT_PHASE:
                written.append(self._p0())
            else:
                written.append(self._phase(self.recipe.phase(name), plans))
        if self.accelerator.is_main_process:
            # Only an empty work folder goes: a failed phase's resumable state stays.
            with contextlib.suppress(OSError):
                (self.options.out / WORK).rmdir()
        return written

    def _announce(self, message: str) -> None:
        if self.accelerator.is_main_process:
            print(f"compass-train: {message}", flush=True)

    def _p0(self) -> Path:
        target = self.options.out / ROOT_PHASE
        if finished(target) and not self.options.force:
            self._announce(f"{ROOT_PHASE}: finished checkpoint kept ({target})")
            return target
        if self.accelerator.is_main_process:
            model, processor = build_p0(self.recipe)
            manifest = phase_manifest(self.recipe, ROOT_PHASE, None, None, [], 0.0)
            save_checkpoint(model, processor, target, manifest)
        self.accelerator.wait_for_everyone()
        self._announce(f"{ROOT_PHASE}: assembled model written to {target}")
        return target

    def _phase(self, phase: PhaseSpec, plans: dict[str, AdapterPlan]) -> Path:
        out = self.options.out
        target, parent_dir = out / phase.name, out / phase.parent
        parent = finished(parent_dir)
        if parent is None:
            raise CompassInputError(f"phase {phase.name}: parent checkpoint {parent_dir} missing")
        current = finished(target)
        if current and not self.options.force:
            if current.get("parent_run_id") != parent["run_id"]:
                self._announce(f"{phase.name}: parent {phase.parent} changed since; retraining")
            elif not made_by(current, self.recipe, phase):
                self._announce(f"{phase.name}: its stages or data changed since; retraining")
            else:
                self._announce(f"{phase.name}: finished checkpoint kept ({target})")
                return target
        work = out / WORK / phase.name
        if self.accelerator.is_main_process:
            # Saved work is only worth resuming on top of the same parent.
            marker = work / "parent_run_id"
            stale = marker.is_file() and marker.read_text() != parent["run_id"]
            if not self.options.resume or stale:
                shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True, exist_ok=True)
            marker.write_text(parent["run_id"])
        self.accelerator.wait_for_everyone()
        started = time.perf_counter()
        processor = AutoProcessor.from_pretrained(parent_dir)
        source, summaries = parent_dir, []
        for stage in phase.stages:
            source, summary = self._stage(phase, stage, plans, source, processor, work)
            summaries.append(summary)
        bases = adapter_bases(phase, parent_dir, target)
        for summary in summaries:
            if summary["adapter"] is not None:
                summary["adapter"]["base"] = str(bases[summary["name"]])
        if self.accelerator.is_main_process:
            manifest = phase_manifest(
                self.recipe,
                phase.name,
                parent,
                parent_dir,
                summaries,
                time.perf_counter() - started,
            )
            publish(source, work, phase, manifest, target, bases)
        self.accelerator.wait_for_everyone()
        self._announce(f"{phase.name}: checkpoint written to {target}")
        return target

    def _stage(
        self,
        phase: PhaseSpec,
        stage: StageSpec,
        plans: dict[str, AdapterPlan],
        source: Path,
        processor: LlavaProcessor,
        work: Path,
    ) -> tuple[Path, dict[str, Any]]:
        """Trains one stage from the weights in `source`; returns where its result lies."""
        stage_dir = work / stage.name
        done = finished(stage_dir / "model")
        if done is not None:
            if done["stage"]["recipe"] != asdict(stage):
                raise CompassInputError(
                    f"{stage_dir}: finished by a different stage recipe; rerun without --resume"
                )
            self._announce(f"{phase.name}/{stage.name}: finished earlier, kept")
            return stage_dir / "model", done["stage"]
        plan = plans[f"{phase.name}/{stage.name}"]
        if plan.fallback:
            self._announce(f"{phase.name}/{stage.name}: warning: {plan.fallback}")
        examples, prints, dropped = stage_examples(self.recipe, stage, processor)
        where = f"phase {phase.name!r}, stage {stage.name!r}"
        # LoRA's initial weights come from the global RNG: the same on every process, every run.
        torch.manual_seed(self.recipe.seed)
        model, selection, counts = stage_model(
            source,
            stage,
            plan,
            self.dtype,
            self.accelerator.device,
            where,
            autocast=self.recipe.mixed_precision != "fp32",
            sharded=shards_parameters(self.accelerator),
        )
        in_model = sum(p.numel() for p in model.parameters() if p.requires_grad)
        model, result = train_stage(
            model,
            examples,
            Collator(processor),
            stage,
            self.recipe.seed,
            self.accelerator,
            stage_dir / "state",
            self.options.resume,
            f"{phase.name}/{stage.name}",
        )
        summary = {
            "name": stage.name,
            "recipe": asdict(stage),
            "adapter": adapter_summary(stage.lora, selection.lora_targets, plan)
            if stage.lora
            else None,
            "trainable_parameters": counts,
            "trainable_parameters_in_model": in_model,
            "data": prints,
            "examples": len(examples),
            "records_left_out": dropped,
            "steps": result.steps,
            "resumed_from_step": result.resumed_from,
            "final_loss": result.losses[-1],
            "losses": result.losses,
            "wall_time_s": round(result.wall_time_s, 3),
            "processes": self.accelerator.num_processes,
        }
        trained = trained_tensors(model, self.accelerator)
        del model
        self.accelerator.free_memory()
        if self.accelerator.is_main_process:
            self._finish_stage(trained, stage, selection, source, processor, stage_dir, summary)
        self.accelerator.wait_for_everyone()
        return stage_dir / "model", summary

    def _finish_stage(
        self,
        trained: dict[str, torch.Tensor],
        stage: StageSpec,
        selection: Selection,
        source: Path,
        processor: LlavaProcessor,
        stage_dir: Path,
        summary: dict[str, Any],
    ) -> None:
        model = with_trained(
            source, stage.lora, selection.lora_targets, trained, self.dtype, selection.train
        )
        stage_dir.mkdir(parents=True, exist_ok=True)
        if stage.lora:
            model.save_pretrained(stage_dir / "adapter")
            model = model.merge_and_unload()
        save_loss_curve(
            summary["losses"], f"{stage_dir.parent.name}/{stage.name}", stage_dir / "loss.png"
        )
        # The stage result is written like a checkpoint: atomically, so resume can trust it.
        save_checkpoint(model, processor, stage_dir / "model", {"stage": summary})


def adapter_bases(phase: PhaseSpec, parent_dir: Path, target: Path) -> dict[str, Path]:
    """The absolute directory each LoRA stage's adapter applies to once `target` is written."""
    bases, base = {}, parent_dir.resolve()
    for stage in phase.stages:
        if stage.lora:
            bases[stage.name] = base
        base = target.resolve() / STAGES / stage.name
    return bases


def publish(
    source: Path,
    work: Path,
    phase: PhaseSpec,
    manifest: dict[str, Any],
    target: Path,
    bases: dict[str, Path],
) -> None:
    """The last stage's weights with every stage's adapter (pointed at its base), the earlier
    stages' results that adapters apply to, loss curves and the manifest appear at `target`
    whole or not at all; then the phase's work folder goes."""
    inside = target.resolve()
    with staged_directory(target) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        for base in bases.values():
            if base.is_relative_to(inside):  # an earlier stage's result
                shutil.copytree(work / base.name / "model", staging / base.relative_to(inside))
        for stage in phase.stages:
            adapter = work / stage.name / "adapter"
            if adapter.is_dir():
                shutil.copytree(adapter, staging / "adapters" / stage.name)
                point_at_base(staging / "adapters" / stage.name, bases[stage.name])
            shutil.copy2(work / stage.name / "loss.png", staging / f"loss_{stage.name}.png")
        write_manifest(staging, manifest)
    shutil.rmtree(work, ignore_errors=True)
