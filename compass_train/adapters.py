"""LoRA and QLoRA: loading a stage's base (4-bit NF4 where asked and possible), wrapping it with
peft, and folding the trained adapter back into full-precision weights for the next stage."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import (
    LoraConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    prepare_model_for_kbit_training,
    set_peft_model_state_dict,
)
from torch import nn
from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

from compass_model.errors import CompassInputError
from compass_train.recipe import LoraSpec, StageSpec

# Only the language model is quantised: the vision tower, projector and output head stay in the
# training dtype (QLoRA practice, and the head is tied to the vocabulary).
_NOT_QUANTISED = ["vision_tower", "multi_modal_projector", "lm_head"]


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
    path: Path, dtype: torch.dtype, device: str | torch.device, quantised: bool
) -> LlavaForConditionalGeneration:
    if not quantised:
        return LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device)
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        llm_int8_skip_modules=_NOT_QUANTISED,
    )
    return LlavaForConditionalGeneration.from_pretrained(
        path, dtype=dtype, quantization_config=config, device_map={"": str(device)}
    )


def lora_config(lora: LoraSpec, targets: list[str]) -> LoraConfig:
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        bias="none",
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


def merged(
    trained: nn.Module,
    lora: LoraSpec,
    targets: list[str],
    plan: AdapterPlan,
    base_path: Path,
    dtype: torch.dtype,
) -> LlavaForConditionalGeneration:
    """The stage's result as plain weights. A 4-bit base cannot take the merge, so the adapter
    (and any fully trained tensors) go onto the full-precision base it was quantised from."""
    if plan.kind != "qlora":
        return trained.merge_and_unload()
    full = get_peft_model(
        load_base(base_path, dtype, "cpu", quantised=False), lora_config(lora, targets)
    )
    set_peft_model_state_dict(full, get_peft_model_state_dict(trained))
    plain = dict(full.named_parameters())
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            if parameter.requires_grad and "lora_" not in name:
                plain[name].copy_(parameter.to(plain[name].dtype))
    return full.merge_and_unload()


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
