"""From chat records to model batches: chat-template rendering, image-token expansion and labels
that cover the assistant turns only (prompt and image tokens carry -100)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LlavaProcessor

from compass_model.config import IMAGE_TOKEN
from compass_model.pages import load_image

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One tokenised record; `pixel_values` is None for text-only records."""

    input_ids: list[int]
    labels: list[int]
    images: tuple[str, ...]


def image_token_count(processor: LlavaProcessor) -> int:
    """Tokens one image expands to: a patch grid at the processor's resolution (SigLIP: no CLS)."""
    size = processor.image_processor.size
    grid = (size.height // processor.patch_size) * (size.width // processor.patch_size)
    return grid + processor.num_additional_image_tokens


def _render(processor: LlavaProcessor, messages: Sequence[dict[str, Any]], prompt: bool) -> str:
    return processor.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=prompt
    )


def encode(record: dict[str, Any], processor: LlavaProcessor, max_length: int) -> Example | None:
    """Tokenises a record segment by segment, so each token knows whether it is learnt from.

    The template renders each message independently of what follows, so the text of turn i is
    render(messages[:i+1]) minus render(messages[:i]); for an assistant turn the generation
    prompt (`### 応答:`) is context and only what follows it is a target. Returns None when
    truncation to `max_length` would cut image tokens (the model needs every one of them).
    """
    tokenizer = processor.tokenizer
    per_image = image_token_count(processor)
    image_tokens = IMAGE_TOKEN * per_image
    messages = record["messages"]
    input_ids: list[int] = []
    labels: list[int] = []
    done = ""

    def add(text: str, learn: bool) -> None:
        ids = tokenizer(text.replace(IMAGE_TOKEN, image_tokens), add_special_tokens=False)[
            "input_ids"
        ]
        input_ids.extend(ids)
        labels.extend(ids if learn else [IGNORE] * len(ids))

    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt = _render(processor, messages[:i], prompt=True)
            add(prompt[len(done) :], learn=False)
            done = prompt
        upto = _render(processor, messages[: i + 1], prompt=False)
        add(upto[len(done) :], learn=message["role"] == "assistant")
        done = upto

    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    expected = len(record["images"]) * per_image
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if input_ids.count(image_id) != expected or all(label == IGNORE for label in labels):
        return None
    return Example(input_ids, labels, tuple(record["images"]))


@dataclass
class Collator:
    """Right-pads a list of examples and processes their images; the batch is what the model takes."""

    processor: LlavaProcessor

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        pad = self.processor.tokenizer.pad_token_id
        width = max(len(e.input_ids) for e in examples)
        input_ids = torch.full((len(examples), width), pad, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example.input_ids)
            input_ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            attention_mask[row, :n] = 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        paths = [path for example in examples for path in example.images]
        if paths:
            images = [load_image(path) for path in paths]
            pixels = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
            batch["pixel_values"] = pixels
        return batch


def length_grouped_order(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator
) -> list[int]:
    """A shuffled order in which each batch holds examples of similar length (less padding).

    Shuffle, cut into mega-batches of 50 batches, sort each by length, then shuffle the batches:
    random at the batch level, tight within a batch (the scheme of the HF Trainer's
    `group_by_length`).
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [index for b in shuffled for index in batches[b]]
