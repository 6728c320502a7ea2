"""The model's shape: named presets of vision tower, projector and language model.

`paper` is the published model (SigLIP-2 so400m/14 at 384 px + llm-jp-4-8B-Instruct); `tiny` is a
seeded random model of the same architecture, small enough for CPU tests in seconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from transformers import LlamaConfig, LlavaConfig, PretrainedConfig, SiglipVisionConfig

IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class CompassConfig:
    """Everything needed to build the model without weights: vision, text and where weights live.

    `vision_backbone` / `language_model` are local directories or hub ids; `None` means random
    initialisation (the tiny preset).
    """

    name: str
    vision: dict[str, Any]
    text: dict[str, Any]
    vision_backbone: str | None = None
    language_model: str | None = None
    seed: int = 0
    # SigLIP has no CLS token: every patch becomes an image token ("full"), from the last layer.
    vision_feature_layer: int = -1
    vision_feature_select_strategy: str = "full"

    @property
    def image_size(self) -> int:
        return self.vision["image_size"]

    @property
    def image_tokens(self) -> int:
        """Image tokens per picture: one per patch."""
        return (self.vision["image_size"] // self.vision["patch_size"]) ** 2

    def llava_config(self, vocab_size: int, image_token_id: int, pad_token_id: int) -> LlavaConfig:
        """The LLaVA configuration of this preset's shapes (random init or the meta device)."""
        text = LlamaConfig(**{**self.text, "vocab_size": vocab_size, "pad_token_id": pad_token_id})
        vision = SiglipVisionConfig(**self.vision, vision_use_head=False)
        return self.llava_config_for(vision, text, image_token_id)

    def llava_config_for(
        self, vision: PretrainedConfig, text: PretrainedConfig, image_token_id: int
    ) -> LlavaConfig:
        """The LLaVA configuration around given backbone configurations.

        LLaVA feeds the projector every patch of a hidden layer and never SigLIP's pooled output,
        so the pooling head is not built (`vision_use_head: false`, as LLaVA-style SigLIP models
        ship): its parameters would train with no gradient (DDP refuses that), and vLLM's SigLIP
        tower applies the head whenever the config asks for it, turning an image into one token.
        """
        if getattr(vision, "vision_use_head", False):
            vision = copy.deepcopy(vision)
            vision.vision_use_head = False
        return LlavaConfig(
            vision_config=vision,
            text_config=text,
            image_token_id=image_token_id,
            image_seq_length=self.image_tokens,
            projector_hidden_act="gelu",
            multimodal_projector_bias=True,
            vision_feature_layer=self.vision_feature_layer,
            vision_feature_select_strategy=self.vision_feature_select_strategy,
            tie_word_embeddings=False,
        )


PAPER = CompassConfig(
    name="paper",
    vision={
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 14,
        "hidden_act": "gelu_pytorch_tanh",
        "layer_norm_eps": 1e-6,
    },
    # llm-jp-4-8B's published shape (model card: 32 layers, hidden 4,096, 32 heads, 65,536 context,
    # 805,306,368 embedding and 7,784,894,464 non-embedding parameters): full multi-head
    # attention, MLP 14,336, untied 98,304-token vocabulary. Shapes only; weights come from the hub.
    text={
        "vocab_size": 98304,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 65536,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
    vision_backbone="google/siglip2-so400m-patch14-384",
    language_model="llm-jp/llm-jp-4-8b-instruct",
)

TINY = CompassConfig(
    name="tiny",
    vision={
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    },
    # The tiny tokenizer's vocabulary (tests check that it trains to exactly this size).
    text={
        "vocab_size": 1024,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    seed=1234,
)

PRESETS: dict[str, CompassConfig] = {preset.name: preset for preset in (PAPER, TINY)}


def preset(name: str) -> CompassConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
