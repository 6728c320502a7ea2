"""Scoring a group's continuations on its shared context equals scoring each row on its own."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from compass_eval.scoring import Scorer, ScoreRow
from compass_model.assemble import build_tiny


def _random_rows(model, seed: int) -> list[ScoreRow]:
    rng = random.Random(seed)
    image_id = model.config.image_token_id
    block = model.config.image_seq_length
    vocab = [t for t in range(5, model.config.text_config.vocab_size) if t != image_id]
    rows = []
    for group in range(12):
        images = []
        context = [0] + rng.choices(vocab, k=rng.randint(1, 40))
        if group % 3 == 0:
            colour = tuple(rng.randrange(256) for _ in range(3))
            images = [Image.new("RGB", (rng.randint(20, 60), 32), colour)]
            context = context[:2] + [image_id] * block + context[2:]
        one_token = group % 4 == 1
        for _ in range(rng.randint(1, 5)):
            length = 1 if one_token else rng.randint(1, 6)
            rows.append(ScoreRow(context, rng.choices(vocab, k=length), images))
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_context_equals_plain_path(seed):
    model, processor = build_tiny()
    rows = _random_rows(model, seed)
    device = torch.device("cpu")
    shared = Scorer(model, processor, device, pad_id=2).loglikelihoods(rows, batch_size=3)
    plain = Scorer(model, processor, device, pad_id=2, share_context=False).loglikelihoods(
        rows, batch_size=1
    )
    assert len(shared) == len(rows)
    for (a, greedy_a), (b, greedy_b) in zip(shared, plain, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
        assert greedy_a == greedy_b
