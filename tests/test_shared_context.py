"""Scoring a group's continuations on its shared context (a token trie, several groups packed per
forward row) equals scoring each row on its own, and computes each distinct prefix once."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from compass_eval.scoring import Scorer, ScoreRow
from compass_model.assemble import build_tiny


def _random_rows(model, seed: int) -> list[ScoreRow]:
    """Questions with and without images; one-token answers, free answers, and answers drawn
    from a few tokens so that they begin alike (as アイ, アウ, … do); some rows repeated; one
    empty answer."""
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
        letters = rng.sample(vocab, 3)
        for _ in range(rng.randint(1, 6)):
            if group % 4 == 1:
                continuation = rng.choices(vocab, k=1)
            elif group % 4 == 2:
                continuation = rng.choices(letters, k=rng.randint(1, 4))
            else:
                continuation = rng.choices(vocab, k=rng.randint(1, 6))
            rows.append(ScoreRow(context, continuation, images))
    rows += rng.sample(rows, 3)
    # A continuation the tokenizer merged into its context: nothing to score.
    rows.append(ScoreRow(rows[0].context, [], rows[0].images))
    rng.shuffle(rows)
    return rows


def _distinct_prefix_tokens(rows: list[ScoreRow]) -> int:
    """Per (context, images): the context once, plus every distinct prefix of the answers' inputs
    (each answer but its last token)."""
    answers: dict[tuple, set] = {}
    for row in rows:
        key = (tuple(row.context), tuple(id(image) for image in row.images))
        prefixes = answers.setdefault(key, set())
        inputs = tuple(row.continuation[:-1])
        prefixes.update(inputs[:k] for k in range(1, len(inputs) + 1))
    return sum(len(context) + len(prefixes) for (context, _), prefixes in answers.items())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_shared_context_equals_plain_path(seed, batch_size):
    model, processor = build_tiny()
    rows = _random_rows(model, seed)
    device = torch.device("cpu")
    shared = Scorer(model, processor, device, pad_id=2)
    results = shared.loglikelihoods(rows, batch_size=batch_size)
    plain = Scorer(model, processor, device, pad_id=2, share_context=False).loglikelihoods(
        rows, batch_size=1
    )
    assert len(results) == len(rows)
    (empty,) = [result for row, result in zip(rows, results, strict=True) if not row.continuation]
    assert empty == (0.0, True)
    for (a, greedy_a), (b, greedy_b) in zip(results, plain, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
        assert greedy_a == greedy_b
    assert shared.tokens_needed == _distinct_prefix_tokens(rows)
    # Padding: none at one group per pass, at most 5% of the needed tokens otherwise.
    if batch_size == 1:
        assert shared.tokens_computed == shared.tokens_needed
    assert shared.tokens_computed <= 1.05 * shared.tokens_needed


def test_short_questions_packed_into_one_row_score_as_alone():
    """Four short questions (two with images) fill the row width of a long one: they share one
    row, each seeing only itself, and images are matched to their own token blocks."""
    model, processor = build_tiny()
    rng = random.Random(3)
    image_id, block = model.config.image_token_id, model.config.image_seq_length
    vocab = [t for t in range(5, model.config.text_config.vocab_size) if t != image_id]
    short = block + 6
    rows = [ScoreRow([0, *rng.choices(vocab, k=4 * short - 1)], rng.choices(vocab, k=1))]
    for colour in [(200, 0, 0), None, (0, 0, 200), None]:
        images = [Image.new("RGB", (32, 32), colour)] if colour else []
        body = (
            [image_id] * block + rng.choices(vocab, k=5)
            if colour
            else rng.choices(vocab, k=short - 1)
        )
        for _ in range(2):
            rows.append(ScoreRow([0, *body], rng.choices(vocab, k=1), images))
    scorer = Scorer(model, processor, torch.device("cpu"), pad_id=2)
    packed = scorer.loglikelihoods(rows, batch_size=8)
    # One pass of two rows, the long question and the four short ones: nothing padded.
    assert scorer.tokens_computed == scorer.tokens_needed == 2 * 4 * short
    assert scorer.scoring_passes == 1
    alone = [
        Scorer(model, processor, torch.device("cpu"), pad_id=2).loglikelihoods([r], 1)[0]
        for r in rows
    ]
    for (a, greedy_a), (b, greedy_b) in zip(packed, alone, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
        assert greedy_a == greedy_b
