"""Training recipes: YAML read once into typed dataclasses (unknown keys refused), plus `--set`
overrides applied to the raw YAML so flags and files pass through the same checks.

A recipe is a chain of phases; each names its parent (`p0` is the untouched assembled model) and
lists stages, each saying what it trains fully, what it freezes, and where LoRA goes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from compass_model.dtypes import DType
from compass_model.errors import CompassInputError
from compass_model.typed import convert, input_error, json_schema, option, read_mapping

ROOT_PHASE = "p0"
PACKAGE_DATA = "package:"


@dataclass(frozen=True)
class LoraSpec:
    """Adapters on the Linear layers under `modules` (groups or module names); `quantization` asks for a
    4-bit NF4 base (QLoRA): `required` fails where 4-bit cannot run, `prefer` falls back to LoRA."""

    modules: list[str] = option(nonempty=True, help="groups or module names to put LoRA on")
    r: int = option(ge=1, help="LoRA rank")
    alpha: int = option(ge=1, help="LoRA alpha (the update is scaled by alpha / r)")
    dropout: float = option(0.0, ge=0.0, lt=1.0, help="dropout on the LoRA input")
    target_modules: list[str] = option(
        default_factory=lambda: ["all-linear"], nonempty=True, help="Linear layers to adapt"
    )
    quantization: Literal["none", "required", "prefer"] = option(
        "none", help="4-bit NF4 base (QLoRA): required, prefer (fall back to LoRA) or none"
    )


@dataclass(frozen=True)
class StageSpec:
    """One optimisation run. Everything not in `train` (or under LoRA) is frozen; `freeze` states it
    explicitly, so a recipe that puts LoRA on something it freezes is refused."""

    name: str = option(nonempty=True, help="stage name, unique within its phase")
    data: list[str] = option(
        nonempty=True, help="JSONL files or folders: absolute, relative to the recipe, or package:"
    )
    train: list[str] = option(default_factory=list, help="groups or modules trained fully")
    freeze: list[str] = option(default_factory=list, help="groups or modules stated frozen")
    lora: LoraSpec | None = option(None, help="LoRA (or QLoRA) adapters")
    lr: float = option(1e-4, gt=0.0, help="learning rate")
    lr_groups: dict[str, float] = option(
        default_factory=dict, gt=0.0, help="learning rate per group (vision, projector, llm)"
    )
    batch_size: int = option(2, ge=1, help="examples per step and process")
    grad_accum: int = option(1, ge=1, help="steps accumulated per optimizer step")
    epochs: float = option(1.0, gt=0.0, help="passes over the data, when max_steps is not given")
    max_steps: int | None = option(None, ge=1, help="optimizer steps (default: from epochs)")
    warmup_ratio: float = option(0.03, ge=0.0, le=1.0, help="share of steps warming up")
    weight_decay: float = option(0.0, ge=0.0, help="AdamW weight decay")
    max_grad_norm: float = option(1.0, gt=0.0, help="gradient clipping norm")
    gradient_checkpointing: bool = option(False, help="recompute activations to save memory")
    text_only: bool = option(False, help="records carry no images")
    max_length: int = option(2048, ge=1, help="tokens per example")
    group_by_length: bool = option(True, help="batch examples of similar length")
    save_every: int = option(50, ge=1, help="optimizer steps between resumable saves")


@dataclass(frozen=True)
class PhaseSpec:
    name: str = option(nonempty=True, help="phase name (p1, p2, ...)")
    parent: str = option(nonempty=True, help="p0 or an earlier phase")
    stages: list[StageSpec] = option(nonempty=True, help="stages run in order")


@dataclass(frozen=True)
class ModelSpec:
    """P0: a preset of compass_model, with backbone directories/hub ids overriding the preset's."""

    preset: str = option("tiny", nonempty=True, help="compass_model preset: paper or tiny")
    vision_backbone: str | None = option(None, help="vision backbone directory or hub id")
    language_model: str | None = option(None, help="language model directory or hub id")
    dtype: DType = option("float32", help="weights' dtype")


@dataclass(frozen=True)
class Recipe:
    name: str = option(nonempty=True, help="recipe name")
    phases: list[PhaseSpec] = option(nonempty=True, help="phases in training order")
    model: ModelSpec = option(default_factory=ModelSpec, help="the P0 model")
    seed: int = option(0, ge=0, help="seed of initialisation, data order and dropout")
    mixed_precision: Literal["fp32", "bf16", "fp16"] = option(
        "fp32", help='autocast precision; "fp32" is none (YAML would read "no" as false)'
    )
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = option(
        default_factory=list, help="experiment trackers, used when installed"
    )
    log_dir: str | None = option(
        None,
        help="trackers' folder (TensorBoard events in <log_dir>/<name>/, W&B's files, MLflow's "
        "local store): absolute or relative to the recipe (default: <out>/.work/logs)",
    )
    base_dir: str = option(".", help="folder relative data paths start from (the recipe's)")

    def phase(self, name: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases)
        raise CompassInputError(f"recipe {self.name!r} has no phase {name!r} (phases: {known})")

    def data_path(self, entry: str) -> Path:
        """Absolute, relative to the recipe's folder, or `package:PKG/PATH` for data shipped
        inside an installed package (the demo's), which works from a wheel as from the repo."""
        if entry.startswith(PACKAGE_DATA):
            package, _, inner = entry.removeprefix(PACKAGE_DATA).partition("/")
            try:
                return Path(str(resources.files(package))) / inner
            except ModuleNotFoundError:
                raise CompassInputError(f"data {entry!r}: no package {package!r}") from None
        path = Path(entry).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """The recipe file with `stage_defaults` merged into every stage and `--set` overrides applied."""
    path = Path(path)
    raw = expand_defaults(read_mapping(path, "recipe"), f"recipe {path}")
    for override in overrides or []:
        apply_override(raw, override)
    raw.setdefault("base_dir", str(path.parent.resolve()))
    recipe = convert(Recipe, raw, f"recipe {path}" + (" (with --set)" if overrides else ""))
    check_chain(recipe)
    return recipe


def expand_defaults(raw: dict[str, Any], where: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    defaults = raw.pop("stage_defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise input_error(where, "stage_defaults", "is not a mapping", "write key: value lines")
    for phase in raw.get("phases") or []:
        if isinstance(phase, dict) and isinstance(phase.get("stages"), list):
            phase["stages"] = [
                {**copy.deepcopy(defaults), **s} if isinstance(s, dict) else s
                for s in phase["stages"]
            ]
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """`KEY=VALUE` (VALUE parsed as YAML). KEY is a dotted path from the top (`seed`,
    `model.preset`), `stages.FIELD` for every stage, or `PHASE.STAGE.FIELD` for one stage."""
    key, sep, text = override.partition("=")
    where = f"--set {override}"
    if not sep or not key:
        raise input_error(where, "", "not KEY=VALUE", "write e.g. --set seed=1")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise input_error(where, key, "VALUE is not valid YAML", "quote it, or fix it") from None
    parts = key.split(".")
    phases = {p.get("name"): p for p in raw.get("phases") or [] if isinstance(p, dict)}
    if parts[0] == "stages" and len(parts) > 1:
        targets = [s for p in phases.values() for s in p.get("stages") or []]
        parts = parts[1:]
    elif parts[0] in phases and len(parts) > 2:
        stages = {s.get("name"): s for s in phases[parts[0]].get("stages") or []}
        if parts[1] not in stages:
            raise input_error(
                where, key, f"phase {parts[0]} has no stage {parts[1]!r}", "name one it has"
            )
        targets, parts = [stages[parts[1]]], parts[2:]
    else:
        targets = [raw]
    for target in targets:
        node = target
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise input_error(where, key, f"{part!r} is not a mapping", "set a field inside")
        node[parts[-1]] = value


@dataclass(frozen=True)
class RunOptions:
    """What `compass-train run` does beyond the recipe; its flags are these fields."""

    out: Path = option(help="folder receiving one checkpoint per phase (p0, p1, ...)")
    only: str | None = option(
        None, help="run this phase only, from its parent's finished checkpoint"
    )
    resume: bool = option(False, help="continue a killed run from its last saved step")
    force: bool = option(False, help="retrain phases whose finished checkpoint exists")


def schema_text() -> str:
    """A recipe's JSON schema, for editors (`stage_defaults` takes any stage field)."""
    schema = json_schema(Recipe)
    stage = json_schema(StageSpec)
    schema["properties"]["stage_defaults"] = {
        "type": "object",
        "properties": stage["properties"],
        "additionalProperties": False,
        "description": "fields merged into every stage (a stage's own value wins)",
    }
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def check_chain(recipe: Recipe) -> None:
    """Phases form a chain rooted at p0; names are unique; each stage's selections are coherent."""
    from compass_model.config import PRESETS  # imports transformers: only once a recipe is read

    if recipe.model.preset not in PRESETS:
        raise input_error(
            f"recipe {recipe.name!r}",
            "model.preset",
            f"{recipe.model.preset!r} is not a preset",
            f"use one of {', '.join(sorted(PRESETS))}",
        )
    seen = {ROOT_PHASE}
    for phase in recipe.phases:
        where = f"recipe {recipe.name!r}: phase {phase.name!r}"
        if phase.name in seen:
            raise CompassInputError(f"{where}: name used twice (or is the reserved {ROOT_PHASE})")
        if phase.parent not in seen:
            raise CompassInputError(
                f"{where}: parent {phase.parent!r} is not p0 or an earlier phase of the recipe"
            )
        seen.add(phase.name)
        stage_names = [stage.name for stage in phase.stages]
        if not stage_names or len(set(stage_names)) != len(stage_names):
            raise CompassInputError(f"{where}: needs stages with distinct names")
        for stage in phase.stages:
            check_stage(stage, f"{where}, stage {stage.name!r}")


def check_stage(stage: StageSpec, where: str) -> None:
    if not stage.data:
        raise CompassInputError(f"{where}: lists no data")
    lora_on = stage.lora.modules if stage.lora else []
    if not stage.train and not lora_on:
        raise CompassInputError(f"{where}: trains nothing (give `train` or `lora.modules`)")
    for name in lora_on:
        if name in stage.freeze:
            raise CompassInputError(f"{where}: LoRA on {name!r}, which the same stage freezes")
        if name in stage.train:
            raise CompassInputError(
                f"{where}: {name!r} is both fully trained and under LoRA; choose one"
            )
    for name in stage.train:
        if name in stage.freeze:
            raise CompassInputError(f"{where}: {name!r} is both trained and frozen")
