"""Batched `generate_until`: left-padded batches give, in the requests' order, exactly what each
request gives alone (greedy), with images, two generation settings and per-row stop strings."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from PIL import Image

from compass_eval.lm import CompassLM
from compass_eval.scoring import _StopAtStrings

RED = Image.new("RGB", (32, 32), (220, 30, 30))
PROMPTS = [
    "問題: 3 + 5 =",
    "売上高は前年同期比で",
    "<image>説明:",
    "有価証券報告書の提出先は",
    "Q",
    "当社グループの連結売上高は前年同期比で増加し、営業利益も増益となりました。答え",
]


def _requests(settings: list[dict]) -> list[Instance]:
    """Each prompt under each setting, interleaved so that the batches must reorder them."""
    requests = []
    for prompt in PROMPTS:
        for gen_kwargs in settings:
            extra = ({"visual": [RED]},) if "<image>" in prompt else ()
            arguments = (prompt, dict(gen_kwargs), *extra)
            requests.append(Instance("generate_until", {}, arguments, idx=len(requests)))
    return requests


@pytest.fixture(scope="module")
def alone(tiny_checkpoint) -> CompassLM:
    return CompassLM(pretrained=str(tiny_checkpoint), batch_size=1)


def _one_by_one(lm: CompassLM, requests: list[Instance]) -> list[str]:
    return [lm.generate_until([request])[0] for request in requests]


def _a_stop_some_rows_reach(alone: CompassLM) -> str:
    """A piece of one unstopped greedy output that the other outputs do not all contain."""
    outputs = _one_by_one(alone, _requests([{"max_gen_toks": 10, "until": []}]))
    for text in outputs:
        for piece in (text[i : i + 2] for i in range(2, len(text) - 1)):
            if piece.strip() and sum(piece in other for other in outputs) < len(outputs) // 2:
                return piece
    raise AssertionError(f"no stop string found in {outputs}")


@pytest.mark.parametrize("batch_size", [4, "auto"])
def test_batched_greedy_generation_equals_one_at_a_time(alone, tiny_checkpoint, batch_size):
    stop = _a_stop_some_rows_reach(alone)
    settings = [{"max_gen_toks": 10, "until": [stop]}, {"max_gen_toks": 6, "until": ["\n\n"]}]
    requests = _requests(settings)
    expected = _one_by_one(alone, requests)
    # The stop string cuts some rows and not others: stopping is per row.
    unstopped = _one_by_one(alone, _requests([{"max_gen_toks": 10, "until": []}]))
    cut = [len(a) < len(b) for a, b in zip(expected[::2], unstopped, strict=True)]
    assert any(cut) and not all(cut)
    batched = CompassLM(pretrained=str(tiny_checkpoint), batch_size=batch_size)
    assert batched.generate_until(requests) == expected


def test_each_row_stops_at_its_own_stop_string(alone):
    tokenizer = alone.tokenizer
    prompt = tokenizer.encode("前文。", add_special_tokens=False)
    rows = [
        prompt + tokenizer.encode(text, add_special_tokens=False) for text in ("増加。", "減少")
    ]
    width = max(map(len, rows))
    # A finished row is padded on the right, as `generate` does; the prompt's own 。 never counts.
    input_ids = torch.tensor([r + [alone._pad_id] * (width - len(r)) for r in rows])
    done = _StopAtStrings(tokenizer, ["。", "\n"], start=len(prompt))(input_ids, None)
    assert done.tolist() == [True, False]
