"""What a stage touches: recipe names (groups or module names) → modules, freezing, LoRA targets,
optimiser parameter groups, and trainable-parameter counts (also on the meta device, for plans)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from torch import nn

from compass_model.errors import CompassInputError
from compass_train.recipe import StageSpec

# The LLaVA layout's three parts; the language model's output head belongs to it.
GROUPS: dict[str, tuple[str, ...]] = {
    "vision": ("model.vision_tower",),
    "projector": ("model.multi_modal_projector",),
    "llm": ("model.language_model", "lm_head"),
}

# Parameters LLaVA's forward never reaches: the features are a hidden state taken before SigLIP's
# post-layernorm (and vLLM builds the tower without it, `require_post_norm=False`). Training them
# would leave them without gradients, which DDP refuses; they are never trainable.
NEVER_USED = ["model.vision_tower.post_layernorm"]


def scope(model: nn.Module, name: str, where: str) -> list[str]:
    """Module names a recipe entry stands for: a group, an exact module name, or a glob."""
    if name in GROUPS:
        return list(GROUPS[name])
    modules = [n for n, _ in model.named_modules() if n]
    if name in modules:
        return [name]
    matched = fnmatch.filter(modules, name)
    if not matched:
        raise CompassInputError(
            f"{where}: {name!r} matches no module in the model "
            f"(groups: {', '.join(GROUPS)}; or a module name such as {modules[1]!r}, or a glob)"
        )
    return matched


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@dataclass(frozen=True)
class Selection:
    """Resolved module names of one stage: fully trained, and LoRA-wrapped Linear layers."""

    train: list[str]
    lora_targets: list[str]


def select(model: nn.Module, stage: StageSpec, where: str) -> Selection:
    """Resolves the stage's names against this model; refuses names and targets that match nothing
    and LoRA on anything the stage freezes, even when only a glob makes them overlap."""
    train = [p for name in stage.train for p in scope(model, name, f"{where}: train")]
    frozen = [p for name in stage.freeze for p in scope(model, name, f"{where}: freeze")]
    targets: list[str] = []
    if stage.lora:
        on = [
            p for name in stage.lora.modules for p in scope(model, name, f"{where}: lora.modules")
        ]
        output = model.get_output_embeddings()
        wanted = set(stage.lora.target_modules)
        for name, module in model.named_modules():
            if not (isinstance(module, nn.Linear) and _under(name, on)) or module is output:
                continue
            if "all-linear" in wanted or name.rsplit(".", 1)[-1] in wanted:
                targets.append(name)
        if not targets:
            raise CompassInputError(
                f"{where}: lora.target_modules {sorted(wanted)} match no Linear layer under "
                f"lora.modules {stage.lora.modules}"
            )
        clash = [t for t in targets if _under(t, frozen) or _under(t, train)]
        if clash:
            raise CompassInputError(
                f"{where}: LoRA on {clash[0]!r}, which the same stage freezes or trains fully"
            )
    overlap = [p for p in train if _under(p, frozen)]
    if overlap:
        raise CompassInputError(f"{where}: {overlap[0]!r} is both trained and frozen")
    return Selection(train=train, lora_targets=targets)


def freeze_all_but(model: nn.Module, train: list[str]) -> None:
    """Only parameters under `train` keep gradients (LoRA adds its own afterwards)."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_trained(_unwrapped(name), train))


def _trained(name: str, train: list[str]) -> bool:
    return _under(name, train) and not _under(name, NEVER_USED)


def _unwrapped(name: str) -> str:
    # peft prefixes names with `base_model.model.` and nests the original under `.base_layer`.
    return name.removeprefix("base_model.model.").replace(".base_layer", "")


def group_of(name: str) -> str | None:
    name = _unwrapped(name)
    for group, prefixes in GROUPS.items():
        if _under(name, list(prefixes)):
            return group
    return None


def param_groups(model: nn.Module, stage: StageSpec) -> list[dict]:
    """AdamW groups: each model group (vision, projector, llm) at its own LR where the recipe gives
    one (LoRA weights follow the group they sit in), the stage's `lr` otherwise; no decay on
    biases and norms."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lr = stage.lr_groups.get(group_of(name) or "", stage.lr)
        decay = 0.0 if parameter.ndim < 2 else stage.weight_decay
        groups.setdefault((lr, decay), []).append(parameter)
    return [
        {"params": params, "lr": lr, "weight_decay": decay}
        for (lr, decay), params in sorted(groups.items())
    ]


def count_trainable(model: nn.Module, selection: Selection, r: int) -> dict[str, int]:
    """Trainable parameters by group, computed from shapes only (works on the meta device)."""
    counts: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        if _trained(name, selection.train):
            key = group_of(name) or "other"
            counts[key] = counts.get(key, 0) + parameter.numel()
    modules = dict(model.named_modules())
    for target in selection.lora_targets:
        layer = modules[target]
        key = f"lora:{group_of(target) or 'other'}"
        counts[key] = counts.get(key, 0) + r * (layer.in_features + layer.out_features)
    counts["total"] = sum(counts.values())
    return counts
