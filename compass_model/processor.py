"""The processor: tokenizer with `<image>` and a chat template, plus a PIL-only SigLIP image processor."""

from __future__ import annotations

from transformers import LlavaProcessor, PreTrainedTokenizerBase
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from compass_model.config import IMAGE_TOKEN, CompassConfig

# llm-jp's instruction format. Message content is a string or a list of parts
# ({"type": "image"} / {"type": "text", "text": ...}); each image part becomes one `<image>` line.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set body = message['content'] %}"
    "{% else %}{% set body = namespace(text='') %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{% set body.text = body.text + '<image>\n' %}"
    "{% elif part['type'] == 'text' %}{% set body.text = body.text + part['text'] %}{% endif %}"
    "{% endfor %}{% set body = body.text %}{% endif %}"
    "{% if message['role'] == 'system' %}{{ body }}\n\n"
    "{% elif message['role'] == 'user' %}### 指示:\n{{ body }}\n\n"
    "{% elif message['role'] == 'assistant' %}### 応答:\n{{ body }}{{ eos_token }}\n\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### 応答:\n{% endif %}"
)


def build_processor(
    config: CompassConfig, tokenizer: PreTrainedTokenizerBase, chat_template: str | None = None
) -> LlavaProcessor:
    """Square resize to the tower's resolution with SigLIP's normalisation; no torchvision needed."""
    size = config.image_size
    image_processor = SiglipImageProcessorPil(
        size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=config.vision["patch_size"],
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        chat_template=chat_template or tokenizer.chat_template or CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=0,
    )
