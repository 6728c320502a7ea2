"""Saved checkpoints are what vLLM's LLaVA + SigLIP loader accepts, and transformers reloads them.

vLLM itself does not import on this machine (see the README), so its loading rules are written
here as data, read from its source (vllm-project/vllm main):
- `vllm/model_executor/models/llava.py` at 35d3c24b: `LlavaForConditionalGeneration.
  hf_to_vllm_mapper` (prefixes below); the tower is `init_vision_tower_for_llava(...,
  require_post_norm=False)`, so it has no post-layernorm and skips its weights.
- `vllm/model_executor/models/siglip.py` at 0c028ba4: `SiglipVisionModel` keeps the
  `vision_model.` level; `SiglipVisionTransformer` builds the pooling head whenever the config
  has no `vision_use_head` or sets it true, and then returns one pooled token per image;
  `load_weights` stacks q/k/v into `qkv_proj` and looks every other name up as it is.
- `vllm/model_executor/models/llama.py`: `LlamaForCausalLM` stacks q/k/v into `qkv_proj` and
  gate/up into `gate_up_proj`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoProcessor

from compass_model.assemble import build_tiny
from compass_model.checkpoint import export_language_model, save_checkpoint
from compass_model.config import TINY

VLLM_PREFIXES = {
    "model.language_model.": "language_model.model.",
    "model.vision_tower.": "vision_tower.",
    "model.multi_modal_projector.": "multi_modal_projector.",
    "lm_head.": "language_model.lm_head.",
}
VLLM_SKIPPED = [r"^vision_tower\.vision_model\.post_layernorm\."]
VLLM_STACKED = {  # checkpoint name part -> vLLM parameter name part
    ".q_proj.": ".qkv_proj.",
    ".k_proj.": ".qkv_proj.",
    ".v_proj.": ".qkv_proj.",
    ".gate_proj.": ".gate_up_proj.",
    ".up_proj.": ".gate_up_proj.",
}
# vLLM's parameters for a LLaVA model with a SigLIP tower without head, `{i}` one per layer.
VLLM_VISION = [
    "embeddings.patch_embedding.weight",
    "embeddings.patch_embedding.bias",
    "embeddings.position_embedding.weight",
] + [
    "encoder.layers.{i}." + part
    for part in (
        "layer_norm1.weight", "layer_norm1.bias", "layer_norm2.weight", "layer_norm2.bias",
        "self_attn.qkv_proj.weight", "self_attn.qkv_proj.bias",
        "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    )
]  # fmt: skip
VLLM_PROJECTOR = ["linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"]
VLLM_LANGUAGE = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"] + [
    "model.layers.{i}." + part
    for part in (
        "input_layernorm.weight", "post_attention_layernorm.weight",
        "self_attn.qkv_proj.weight", "self_attn.o_proj.weight",
        "mlp.gate_up_proj.weight", "mlp.down_proj.weight",
    )
]  # fmt: skip


def vllm_parameters(vision_layers: int, text_layers: int) -> set[str]:
    def expand(prefix: str, templates: list[str], layers: int) -> set[str]:
        return {prefix + t.format(i=i) for t in templates for i in range(layers)}

    return (
        expand("vision_tower.vision_model.", VLLM_VISION, vision_layers)
        | expand("multi_modal_projector.", VLLM_PROJECTOR, 1)
        | expand("language_model.", VLLM_LANGUAGE, text_layers)
    )


def vllm_target(name: str) -> str | None:
    """Where vLLM's loader puts a checkpoint tensor; None when it skips it."""
    for old, new in VLLM_PREFIXES.items():
        if name.startswith(old):
            name = new + name.removeprefix(old)
            break
    if any(re.search(pattern, name) for pattern in VLLM_SKIPPED):
        return None
    for part, stacked in VLLM_STACKED.items():
        name = name.replace(part, stacked)
    return name


def _saved(tmp_path: Path):
    model, processor = build_tiny()
    directory = save_checkpoint(model, processor, tmp_path / "ckpt", {"phase": "p0"})
    with safe_open(directory / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    return model, processor, directory, names


def test_saved_names_are_what_vllm_loads(tmp_path: Path) -> None:
    _, _, directory, names = _saved(tmp_path)
    targets = {vllm_target(name) for name in names} - {None}
    expected = vllm_parameters(TINY.vision["num_hidden_layers"], TINY.text["num_hidden_layers"])
    assert targets == expected, (sorted(targets - expected), sorted(expected - targets))
    config = json.loads((directory / "config.json").read_text())
    # vLLM's tower applies the pooling head unless the config says false in so many words.
    assert config["vision_config"]["vision_use_head"] is False
    assert config["vision_feature_select_strategy"] == "full"
    for processor_file in ("preprocessor_config.json", "processor_config.json", "tokenizer.json"):
        assert (directory / processor_file).is_file(), processor_file


def test_transformers_reloads_the_vllm_layout_with_identical_logits(tmp_path: Path) -> None:
    model, processor, directory, _ = _saved(tmp_path)
    reloaded, info = AutoModelForImageTextToText.from_pretrained(
        directory, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(AutoProcessor.from_pretrained(directory)).__name__ == "LlavaProcessor"
    image_token = model.config.image_token_id
    input_ids = torch.tensor([[3] + [image_token] * TINY.image_tokens + [10, 11, 12]])
    pixel_values = torch.randn(
        1, 3, TINY.image_size, TINY.image_size, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        before = model(input_ids=input_ids, pixel_values=pixel_values).logits
        after = reloaded.eval()(input_ids=input_ids, pixel_values=pixel_values).logits
    assert torch.equal(before, after)


def test_exported_language_model_stops_at_the_tokenizers_eos(tmp_path: Path) -> None:
    model, processor = build_tiny()
    exported = export_language_model(model, processor, tmp_path / "lm")
    eos = processor.tokenizer.eos_token_id
    assert processor.tokenizer.convert_ids_to_tokens(eos) == "</s>"
    assert json.loads((exported / "config.json").read_text())["eos_token_id"] == eos
    assert json.loads((exported / "generation_config.json").read_text())["eos_token_id"] == eos
