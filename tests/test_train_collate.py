"""Loss masking on one real batch: only assistant answers (and their end token) are learnt from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from compass_model.assemble import build_tiny
from compass_model.config import IMAGE_TOKEN
from compass_train.collate import IGNORE, Collator, encode, length_grouped_order
from compass_train.records import load_records


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


@pytest.fixture
def records(tmp_path: Path) -> list[dict]:
    Image.new("RGB", (20, 20), "red").save(tmp_path / "page.png")
    lines = [
        {
            "id": "vqa",
            "kind": "vqa",
            "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "色は?"}]},
                {"role": "assistant", "content": "赤です。"},
                {"role": "user", "content": "根拠は?"},
                {"role": "assistant", "content": "塗りが赤い。"},
            ],
            "images": ["page.png"],
        },
        {
            "id": "text",
            "kind": "text_sft",
            "messages": [
                {"role": "user", "content": "1+1は?"},
                {"role": "assistant", "content": "<Answer>\\boxed{2}</Answer>"},
            ],
        },
    ]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), "utf-8")
    return list(load_records(tmp_path))


def test_labels_cover_exactly_the_assistant_answers(tiny, records) -> None:
    model, processor = tiny
    tokenizer = processor.tokenizer
    examples = [encode(r, processor, max_length=512) for r in records]
    batch = Collator(processor)(examples)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]

    # Image and prompt tokens, and padding, are never targets.
    assert (ids == image_id).sum() == model.config.image_seq_length
    assert (labels[ids == image_id] == IGNORE).all()
    assert (labels[mask == 0] == IGNORE).all()
    assert batch["pixel_values"].shape == (1, 3, 32, 32)

    for row, record in enumerate(records):
        learnt = [
            t
            for t, label in zip(ids[row].tolist(), labels[row].tolist(), strict=True)
            if label != IGNORE
        ]
        answers = [m["content"][0]["text"] for m in record["messages"] if m["role"] == "assistant"]
        expected = "".join(f"{a}{tokenizer.eos_token}\n\n" for a in answers)
        assert tokenizer.decode(learnt) == expected
        # The whole sequence is exactly what the chat template renders, images expanded.
        rendered = processor.apply_chat_template(record["messages"], tokenize=False)
        rendered = rendered.replace(IMAGE_TOKEN, IMAGE_TOKEN * model.config.image_seq_length)
        length = int(mask[row].sum())
        assert (
            ids[row, :length].tolist() == tokenizer(rendered, add_special_tokens=False)["input_ids"]
        )

    # The model accepts the batch and the loss only counts the answer tokens.
    assert model(**batch).loss.isfinite()


def test_truncation_that_would_cut_image_tokens_drops_the_record(tiny, records) -> None:
    _, processor = tiny
    assert encode(records[0], processor, max_length=10) is None
    full = encode(records[1], processor, max_length=512)
    kept = encode(records[1], processor, max_length=len(full.input_ids) - 2)
    assert kept.input_ids == full.input_ids[:-2] and kept.labels == full.labels[:-2]
    # Cut before the answer starts: nothing left to learn, so the record is dropped too.
    first_target = next(i for i, label in enumerate(full.labels) if label != IGNORE)
    assert encode(records[1], processor, max_length=first_target) is None


def test_length_grouped_order_is_a_seeded_permutation_with_tight_batches() -> None:
    import torch

    lengths = [5, 100, 6, 99, 7, 98, 8, 97]
    first = length_grouped_order(lengths, 2, torch.Generator().manual_seed(1))
    assert sorted(first) == list(range(8))
    assert first == length_grouped_order(lengths, 2, torch.Generator().manual_seed(1))
    batches = [first[i : i + 2] for i in range(0, 8, 2)]
    assert all(abs(lengths[a] - lengths[b]) < 10 for a, b in batches)
