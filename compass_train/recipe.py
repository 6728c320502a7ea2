"""Training recipes: YAML read once into typed dataclasses (unknown keys refused), plus `--set`
overrides applied to the raw YAML so flags and files pass through the same checks.

A recipe is a chain of phases; each names its parent (`p0` is the untouched assembled model) and
lists stages, each saying what it trains fully, what it freezes, and where LoRA goes.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from compass_model.errors import CompassInputError

ROOT_PHASE = "p0"
PACKAGE_DATA = "package:"


@dataclass(frozen=True)
class LoraSpec:
    """Adapters on the Linear layers under `modules` (groups or module names); `quantization` asks for a
    4-bit NF4 base (QLoRA): `required` fails where 4-bit cannot run, `prefer` falls back to LoRA."""

    modules: list[str]
    r: int
    alpha: int
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    quantization: Literal["none", "required", "prefer"] = "none"


@dataclass(frozen=True)
class StageSpec:
    """One optimisation run. Everything not in `train` (or under LoRA) is frozen; `freeze` states it
    explicitly, so a recipe that puts LoRA on something it freezes is refused."""

    name: str
    data: list[str]
    train: list[str] = field(default_factory=list)
    freeze: list[str] = field(default_factory=list)
    lora: LoraSpec | None = None
    lr: float = 1e-4
    lr_groups: dict[str, float] = field(default_factory=dict)
    batch_size: int = 2
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int | None = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    text_only: bool = False
    max_length: int = 2048
    group_by_length: bool = True
    save_every: int = 50


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    parent: str
    stages: list[StageSpec]


@dataclass(frozen=True)
class ModelSpec:
    """P0: a preset of compass_model, with backbone directories/hub ids overriding the preset's."""

    preset: str = "tiny"
    vision_backbone: str | None = None
    language_model: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


@dataclass(frozen=True)
class Recipe:
    name: str
    phases: list[PhaseSpec]
    model: ModelSpec = field(default_factory=ModelSpec)
    seed: int = 0
    # Autocast precision; "fp32" is none (not accelerate's "no", which YAML reads as false).
    mixed_precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # Experiment trackers, used when installed (a missing one is skipped with a warning).
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = field(default_factory=list)
    # Where relative data paths are resolved: the recipe file's folder.
    base_dir: str = "."

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
    if not path.is_file():
        raise CompassInputError(f"recipe {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CompassInputError(
            f"recipe {path}: not valid YAML ({error})".replace("\n", " ")
        ) from None
    if not isinstance(raw, dict):
        raise CompassInputError(f"recipe {path}: must be a mapping")
    raw = expand_defaults(raw, str(path))
    for override in overrides or []:
        apply_override(raw, override)
    raw.setdefault("base_dir", str(path.parent.resolve()))
    recipe = from_raw(Recipe, raw, f"recipe {path.name}")
    check_chain(recipe)
    return recipe


def expand_defaults(raw: dict[str, Any], where: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    defaults = raw.pop("stage_defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise CompassInputError(f"{where}: stage_defaults must be a mapping")
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
    if not sep or not key:
        raise CompassInputError(f"--set {override!r}: write KEY=VALUE")
    value = yaml.safe_load(text)
    parts = key.split(".")
    phases = {p.get("name"): p for p in raw.get("phases") or [] if isinstance(p, dict)}
    if parts[0] == "stages" and len(parts) > 1:
        targets = [s for p in phases.values() for s in p.get("stages") or []]
        parts = parts[1:]
    elif parts[0] in phases and len(parts) > 2:
        stages = {s.get("name"): s for s in phases[parts[0]].get("stages") or []}
        if parts[1] not in stages:
            raise CompassInputError(f"--set {key}: phase {parts[0]} has no stage {parts[1]!r}")
        targets, parts = [stages[parts[1]]], parts[2:]
    else:
        targets = [raw]
    for target in targets:
        node = target
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CompassInputError(f"--set {key}: {part!r} is not a mapping")
        node[parts[-1]] = value


def from_raw(kind: Any, value: Any, where: str) -> Any:
    """Converts parsed YAML to the annotated type, refusing unknown keys and wrong types."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise CompassInputError(f"{where}: expected a mapping, got {value!r}")
        hints = typing.get_type_hints(kind)
        names = [f.name for f in dataclasses.fields(kind)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise CompassInputError(
                f"{where}: unknown key {unknown[0]!r} (known: {', '.join(names)})"
            )
        required = [
            f.name
            for f in dataclasses.fields(kind)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in value]
        if missing:
            raise CompassInputError(f"{where}: missing key {missing[0]!r}")
        return kind(
            **{key: from_raw(hints[key], item, f"{where}.{key}") for key, item in value.items()}
        )
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return from_raw(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise CompassInputError(f"{where}: expected a list, got {value!r}")
        (inner,) = typing.get_args(kind)
        return [
            from_raw(inner, item, f"{where}[{_label(item, i)}]") for i, item in enumerate(value)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            raise CompassInputError(f"{where}: expected a mapping, got {value!r}")
        _, inner = typing.get_args(kind)
        return {str(k): from_raw(inner, v, f"{where}.{k}") for k, v in value.items()}
    if origin is Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(map(str, typing.get_args(kind)))
            raise CompassInputError(f"{where}: {value!r} is not one of {choices}")
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as a string.
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise CompassInputError(f"{where}: expected {kind.__name__}, got {value!r}")


def _label(item: Any, index: int) -> str:
    return item["name"] if isinstance(item, dict) and "name" in item else str(index)


def check_chain(recipe: Recipe) -> None:
    """Phases form a chain rooted at p0; names are unique; each stage's selections are coherent."""
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
    for name, value in (("batch_size", stage.batch_size), ("grad_accum", stage.grad_accum)):
        if value < 1:
            raise CompassInputError(f"{where}: {name} must be at least 1")
    if stage.lora and (stage.lora.r < 1 or stage.lora.alpha < 1):
        raise CompassInputError(f"{where}: lora.r and lora.alpha must be positive")
