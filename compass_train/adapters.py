"""LoRA and QLoRA: loading a stage's base (4-bit NF4 where asked and possible), wrapping it with
peft, and folding the trained adapter back into full-precision weights for the next stage.

A saved adapter stands alone: besides the LoRA weights it carries every module the stage trained
fully (peft `modules_to_save`), and its `base_model_name_or_path` is the absolute directory of the
weights the stage started from, so plain peft rebuilds the stage's result from base + adapter."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import (
    LoraConfig,
    PeftModel,
    get_peft_model,
    prepare_model_for_kbit_training,
)
from torch import nn
from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

from compass_model.errors import CompassInputError
from compass_train.recipe import LoraSpec, StageSpec

# Only the language model is quantised: the vision tower, projector and output head stay in the
# training dtype (QLoRA practice, and the head is tied to the vocabulary). transformers 5 matches
# these from the start of a module's full name (or as its suffix), so they are full names.
_NOT_QUANTISED = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]
# What peft puts before the wrapped model's parameter names.
_PEFT_PREFIX = "base_model.model."


@functools.cache
def nf4_problem(device: str) -> str | None:
    """Why 4-bit NF4 training cannot run on `device`, or None when a forward/backward works."""
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(64, 64, compute_dtype=torch.float32, quant_type="nf4")
        layer = layer.to(device)
        x = torch.randn(2, 64, device=device, requires_grad=True)
        layer(x).sum().backward()
    except Exception as error:  # any failure means "not here"; the message says which
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


@dataclass(frozen=True)
class AdapterPlan:
    """What a stage's adapter really is on this machine, for the manifest."""

    kind: str | None  # "lora", "qlora" or None
    fallback: str | None = None


def adapter_plan(stage: StageSpec, device: str) -> AdapterPlan:
    """Applies the `quantization` policy: never a silent fallback."""
    lora = stage.lora
    if lora is None:
        return AdapterPlan(None)
    if lora.quantization == "none":
        return AdapterPlan("lora")
    problem = nf4_problem(device)
    if problem is None:
        return AdapterPlan("qlora")
    if lora.quantization == "required":
        raise CompassInputError(
            f"stage {stage.name!r} requires 4-bit NF4 (QLoRA), which bitsandbytes cannot run on "
            f"{device}: {problem}; use lora.quantization: prefer to fall back to LoRA"
        )
    return AdapterPlan("lora", fallback=f"4-bit NF4 unavailable on {device} ({problem}): LoRA")


def load_base(
    path: Path,
    dtype: torch.dtype,
    device: str | torch.device,
    quantised: bool,
    sharded: bool = False,
) -> LlavaForConditionalGeneration:
    """A stage's starting weights. Under FSDP / ZeRO-3 (`sharded`) the 4-bit weights are stored
    in `dtype` so they shard like every other tensor, and no `device_map` is given: the
    launcher places the shards (the QLoRA-with-FSDP setting of bitsandbytes and accelerate)."""
    if not quantised:
        return LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device)
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype,
        llm_int8_skip_modules=_NOT_QUANTISED,
    )
    placement = {} if sharded else {"device_map": {"": str(device)}}
    return LlavaForConditionalGeneration.from_pretrained(
        path, dtype=dtype, quantization_config=config, **placement
    )


def lora_config(
    lora: LoraSpec, targets: list[str], modules_to_save: list[str] | None = None
) -> LoraConfig:
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        bias="none",
        modules_to_save=modules_to_save or None,
    )


def outermost(modules: list[str]) -> list[str]:
    """The module names not inside another one of the list: peft wraps each `modules_to_save`
    entry whole, so a module nested in another entry is already saved with it."""
    return list(
        dict.fromkeys(
            m for m in modules if not any(m.startswith(o + ".") for o in modules if o != m)
        )
    )


def wrap(
    model: LlavaForConditionalGeneration,
    lora: LoraSpec,
    targets: list[str],
    plan: AdapterPlan,
    gradient_checkpointing: bool,
) -> PeftModel:
    if plan.kind == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing
        )
    return get_peft_model(model, lora_config(lora, targets))


def with_trained(
    base_path: Path,
    lora: LoraSpec | None,
    targets: list[str],
    trained: dict[str, torch.Tensor],
    dtype: torch.dtype,
    fully_trained: list[str],
) -> nn.Module:
    """The stage's result on the CPU: its full-precision input weights carrying the gathered
    trained tensors, wrapped in the same LoRA when it has one, with the fully trained modules
    (`fully_trained`) as its `modules_to_save`. Rebuilding from the input works whatever the
    training copy was: 4-bit (a 4-bit base cannot take the merge), sharded by FSDP or ZeRO-3,
    or wrapped by DDP."""
    model = load_base(base_path, dtype, "cpu", quantised=False)
    # Fully trained tensors go into the plain model first, so peft's copies for
    # `modules_to_save` carry them; LoRA's own tensors exist only once it is wrapped.
    plain = dict(model.named_parameters())
    full = {n: t for n, t in trained.items() if n.removeprefix(_PEFT_PREFIX) in plain}
    _copy_into(plain, {n.removeprefix(_PEFT_PREFIX): t for n, t in full.items()})
    if lora is not None:
        config = lora_config(lora, targets, outermost(fully_trained))
        model = get_peft_model(model, config)
    _copy_into(dict(model.named_parameters()), {n: t for n, t in trained.items() if n not in full})
    return model


def _copy_into(parameters: dict[str, nn.Parameter], tensors: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, tensor in tensors.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))


def point_at_base(adapter_dir: Path, base: Path) -> None:
    """Records `base` (made absolute) as the directory the saved adapter applies to, so
    `AutoPeftModel.from_pretrained(adapter_dir)` works from any working directory."""
    config_file = adapter_dir / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(base.resolve())
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def adapter_summary(lora: LoraSpec, targets: list[str], plan: AdapterPlan) -> dict[str, Any]:
    return {
        "type": plan.kind,
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "target_layers": len(targets),
        "quantization": "nf4-4bit-double-quant" if plan.kind == "qlora" else "none",
        "requested_quantization": lora.quantization,
        "fallback": plan.fallback,
    }
