"""Building the LLaVA-layout model: from a preset (random or on the meta device) or from backbones."""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    SiglipVisionModel,
)
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from compass_model.config import IMAGE_TOKEN, TINY, CompassConfig
from compass_model.processor import build_processor
from compass_model.tokenizer import tiny_tokenizer, with_image_token


def build_random(
    config: CompassConfig, seed: int | None = None
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A preset with seeded random weights and the tiny tokenizer: same seed, same model."""
    tokenizer = tiny_tokenizer()
    llava_config = config.llava_config(
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.seed if seed is None else seed)
    model = LlavaForConditionalGeneration(llava_config).eval()
    return model, build_processor(config, tokenizer)


def build_tiny(seed: int | None = None) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """The tiny preset: CPU-sized, for tests and the demo."""
    return build_random(TINY, seed)


def build_on_meta(config: CompassConfig) -> LlavaForConditionalGeneration:
    """The full architecture without memory: for shapes, parameter counts and training plans."""
    vocab_size = config.text["vocab_size"]
    llava_config = config.llava_config(
        vocab_size=vocab_size, image_token_id=vocab_size - 1, pad_token_id=vocab_size - 2
    )
    with torch.device("meta"):
        return LlavaForConditionalGeneration(llava_config)


def assemble(
    config: CompassConfig,
    vision_backbone: str | None = None,
    language_model: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """P0: pretrained vision tower + fresh projector (seeded) + pretrained language model.

    Backbones are local directories or hub ids; a full SigLIP checkpoint gives its vision half.
    """
    vision_source = vision_backbone or config.vision_backbone
    language_source = language_model or config.language_model
    if not vision_source or not language_source:
        raise ValueError(f"preset {config.name!r} names no backbones: pass both directories")
    # Without the pooling head LLaVA never uses (see CompassConfig.llava_config_for).
    vision = SiglipVisionModel.from_pretrained(vision_source, dtype=dtype, vision_use_head=False)
    causal_lm = AutoModelForCausalLM.from_pretrained(language_source, dtype=dtype)
    tokenizer = with_image_token(AutoTokenizer.from_pretrained(language_source))

    llava_config = config.llava_config_for(
        vision.config, causal_lm.config, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(llava_config)
    # Take the pretrained modules as they are (no copy); only the projector is new.
    model.model.vision_tower = vision
    model.model.language_model = causal_lm.model
    model.lm_head = causal_lm.lm_head
    torch.manual_seed(config.seed)
    model.model.multi_modal_projector = LlavaMultiModalProjector(llava_config).to(dtype)
    model.resize_token_embeddings(len(tokenizer))
    model.config.text_config.vocab_size = len(tokenizer)
    model.config.text_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), build_processor(config, tokenizer)
