"""Saved adapters stand alone: on the demo recipe (two steps a stage), every LoRA stage's adapter
loaded onto its recorded base by plain transformers + peft gives that stage's result, from any
working directory; the QLoRA adapter on its 4-bit base gives the model as trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    BitsAndBytesConfig,
)

from compass_train.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo.yaml"
# (adapter, what it reproduces): the phase checkpoint for a phase's last stage, the kept merged
# result under `stages/` for an earlier one. P2's single stage is QLoRA, merged in full precision.
LORA_STAGES = [
    ("p1/adapters/s2", "p1"),
    ("p2/adapters/s1", "p2"),
    ("p3/adapters/s1", "p3/stages/s1"),
    ("p3/adapters/s2", "p3"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The demo trained with a relative `--out`, as a user in their project folder would."""
    where = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(where)
        assert main(["run", str(DEMO), "--out", "ckpt", "--set", "stages.max_steps=2"]) == 0
    return where / "ckpt"


@pytest.fixture(scope="module")
def inputs(run: Path) -> BatchFeature:
    """A chat turn with a page image, so the vision tower and projector are on the path."""
    processor = AutoProcessor.from_pretrained(run / "p1")
    turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "売上高は?"}]}]
    return processor(
        images=[Image.new("RGB", (40, 40), "navy")],
        text=[processor.apply_chat_template(turn, add_generation_prompt=True)],
        return_tensors="pt",
    )


def _logits(model: torch.nn.Module, inputs: BatchFeature, training: bool = False) -> torch.Tensor:
    """`training`: 4-bit layers computed as in training. On a CPU with AVX512-BF16, bitsandbytes
    repacks an eval-mode 4-bit layer at its first call, and a base repacked before peft wraps it
    lands ~2e-3 from the trainer's logits; no dropout is on, so train mode changes nothing else."""
    with torch.no_grad():
        return model.train(training)(**inputs).logits


def _gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def _base_of(adapter: Path) -> Path:
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    return Path(config["base_model_name_or_path"])


@pytest.mark.parametrize(("adapter", "reference"), LORA_STAGES)
def test_plain_peft_base_plus_adapter_reproduces_the_stage(
    run: Path, inputs: BatchFeature, adapter: str, reference: str
) -> None:
    from peft import PeftModel

    base = _base_of(run / adapter)
    assert base.is_absolute() and (base / "config.json").is_file(), base
    assert ".work" not in base.parts
    phase, _, stage = adapter.partition("/adapters/")
    recorded = {
        s["name"]: s for s in json.loads((run / phase / "compass_phase.json").read_text())["stages"]
    }
    assert recorded[stage]["adapter"]["base"] == str(base)
    expected = _logits(AutoModelForImageTextToText.from_pretrained(run / reference), inputs)
    plain = AutoModelForImageTextToText.from_pretrained(base)
    # The stage changed the logits: equality below is the adapter's doing, not the base's.
    assert _gap(_logits(plain, inputs), expected) > 1e-2
    rebuilt = PeftModel.from_pretrained(plain, run / adapter)
    assert _gap(_logits(rebuilt, inputs), expected) <= 1e-5


def test_auto_peft_model_loads_every_adapter_from_another_directory(
    run: Path, inputs: BatchFeature, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peft import AutoPeftModel

    monkeypatch.chdir(tmp_path)
    for adapter, reference in LORA_STAGES:
        expected = _logits(AutoModelForImageTextToText.from_pretrained(run / reference), inputs)
        loaded = AutoPeftModel.from_pretrained(str(run / adapter))
        assert _gap(_logits(loaded, inputs), expected) <= 1e-5, adapter


def _as_trained(run: Path, base: Path, adapter: Path) -> torch.nn.Module:
    """P2's stage as the trainer held it at its last step: its own 4-bit stack on P1, carrying
    the LoRA tensors of the adapter and the fully trained modules taken from P2's checkpoint."""
    from compass_train.adapters import adapter_plan
    from compass_train.phases import stage_model
    from compass_train.recipe import load_recipe

    stage = load_recipe(DEMO).phase("p2").stages[0]
    plan = adapter_plan(stage, "cpu")
    assert plan.kind == "qlora"
    model, _, _ = stage_model(base, stage, plan, torch.float32, "cpu", "p2/s1")
    p2 = dict(AutoModelForImageTextToText.from_pretrained(run / "p2").named_parameters())
    lora = load_file(adapter / "adapter_model.safetensors")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".lora_" in name:
                parameter.copy_(lora[name.replace(".default.", ".")])
            elif parameter.requires_grad:
                parameter.copy_(p2[name.removeprefix("base_model.model.")])
    return model


def test_qlora_adapter_on_its_4_bit_base_is_the_trained_model(
    run: Path, inputs: BatchFeature
) -> None:
    """Training saw P1 in 4-bit NF4, loaded here with plain transformers as the manifest
    describes it: with the adapter, that is the model as trained, to 1e-5. P2 is the same
    adapter merged onto P1 in full precision (checked to 1e-5 above), so it differs from the
    4-bit model by the rounding of P1's language model, of the size of P1's own 4-bit gap."""
    from peft import PeftModel

    adapter = run / "p2" / "adapters" / "s1"
    manifest = json.loads((run / "p2" / "compass_phase.json").read_text(encoding="utf-8"))
    assert manifest["stages"][0]["adapter"]["quantization"] == "nf4-4bit-double-quant"
    nf4 = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
        bnb_4bit_quant_storage=torch.float32,
        llm_int8_skip_modules=["model.vision_tower", "model.multi_modal_projector", "lm_head"],
    )
    base = _base_of(adapter)

    def quantised() -> torch.nn.Module:
        return AutoModelForImageTextToText.from_pretrained(
            base, quantization_config=nf4, device_map={"": "cpu"}
        )

    with_adapter = _logits(PeftModel.from_pretrained(quantised(), adapter), inputs, training=True)
    as_trained = _logits(_as_trained(run, base, adapter), inputs, training=True)
    assert _gap(with_adapter, as_trained) <= 1e-5
    p1 = _logits(AutoModelForImageTextToText.from_pretrained(base), inputs)
    rounding = _gap(_logits(quantised(), inputs, training=True), p1)
    p2 = _logits(AutoModelForImageTextToText.from_pretrained(run / "p2"), inputs)
    assert 1e-3 < _gap(with_adapter, p2) < 2 * rounding


def test_qlora_stages_quantise_only_the_language_model(run: Path) -> None:
    import bitsandbytes as bnb

    from compass_train.adapters import load_base

    model = load_base(run / "p1", torch.float32, "cpu", quantised=True)
    quantised = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised and all(n.startswith("model.language_model.") for n in quantised)
