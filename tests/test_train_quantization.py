"""The QLoRA policy: 4-bit NF4 where bitsandbytes runs it, otherwise `required` refuses and
`prefer` falls back to LoRA, saying so. Probed on real devices: this CPU runs NF4; a CUDA device
on a machine without CUDA does not."""

from __future__ import annotations

import pytest
import torch

from compass_model.errors import CompassInputError
from compass_train.adapters import adapter_plan, adapter_summary, nf4_problem
from compass_train.recipe import LoraSpec, StageSpec

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _stage(quantization: str) -> StageSpec:
    lora = LoraSpec(modules=["llm"], r=8, alpha=16, quantization=quantization)
    return StageSpec(name="s1", data=["d.jsonl"], lora=lora)


def test_bitsandbytes_runs_nf4_forward_and_backward_on_this_cpu() -> None:
    assert nf4_problem("cpu") is None
    assert adapter_plan(_stage("required"), "cpu").kind == "qlora"


def test_required_refuses_where_nf4_cannot_run() -> None:
    with pytest.raises(CompassInputError, match=r"requires 4-bit NF4 \(QLoRA\).*cuda.*prefer"):
        adapter_plan(_stage("required"), "cuda")


def test_prefer_falls_back_to_lora_and_the_manifest_says_so() -> None:
    stage = _stage("prefer")
    plan = adapter_plan(stage, "cuda")
    assert plan.kind == "lora" and "4-bit NF4 unavailable on cuda" in plan.fallback
    summary = adapter_summary(stage.lora, ["a", "b"], plan)
    assert summary["type"] == "lora" and summary["quantization"] == "none"
    assert summary["requested_quantization"] == "prefer" and summary["fallback"] == plan.fallback
    assert adapter_plan(_stage("none"), "cuda").kind == "lora"
