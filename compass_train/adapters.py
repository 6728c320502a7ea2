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
    prepare_model_for_kbit_training,
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


def with_trained(
    base_path: Path,
    lora: LoraSpec | None,
    targets: list[str],
    trained: dict[str, torch.Tensor],
    dtype: torch.dtype,
) -> nn.Module:
    """The stage's result on the CPU: its full-precision input weights (wrapped in the same LoRA
    when it has one) carrying the gathered trained tensors. Rebuilding from the input works
    whatever the training copy was: 4-bit (a 4-bit base cannot take the merge), sharded by
    FSDP or ZeRO-3, or wrapped by DDP."""
    model = load_base(base_path, dtype, "cpu", quantised=False)
    if lora is not None:
        model = get_peft_model(model, lora_config(lora, targets))
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in trained.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))
    return model


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
