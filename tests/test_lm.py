"""The `compass` LM on its own: image requests, generation, batching and truncation."""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance
from PIL import Image

from compass_eval.lm import CompassLM
from compass_eval.scoring import ScoreRow, fit_to_length
from compass_model.errors import CompassInputError

RED = Image.new("RGB", (32, 32), (220, 30, 30))
BLUE = Image.new("RGB", (32, 32), (30, 60, 220))


def _request(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


@pytest.fixture(scope="module")
def lm(tiny_checkpoint) -> CompassLM:
    return CompassLM(pretrained=str(tiny_checkpoint), batch_size=3)


def test_the_image_changes_the_loglikelihood(lm):
    red, blue, again = lm.loglikelihood(
        [
            _request("loglikelihood", "<image>色は", "赤", {"visual": [RED]}),
            _request("loglikelihood", "<image>色は", "赤", {"visual": [BLUE]}),
            _request("loglikelihood", "<image>色は", "赤", {"visual": [RED]}),
        ]
    )
    assert red[0] != pytest.approx(blue[0], abs=1e-6)
    assert red[0] == pytest.approx(again[0], abs=1e-6)


def test_generation_with_an_image_returns_text(lm):
    (text,) = lm.generate_until(
        [_request("generate_until", "<image>説明:", {"max_gen_toks": 8}, {"visual": [RED]})]
    )
    assert isinstance(text, str) and text


def test_batching_does_not_change_scores(lm, tiny_checkpoint):
    requests = [
        _request("loglikelihood", "売上高は", "増加"),
        _request("loglikelihood", "有価証券報告書の提出先は金融庁です。答え:", "はい"),
        _request("loglikelihood", "<image>色は", "青", {"visual": [BLUE]}),
        _request("loglikelihood", "問", " 3"),
    ]
    one_by_one = CompassLM(pretrained=str(tiny_checkpoint), batch_size=1)
    batched = lm.loglikelihood(requests)
    single = one_by_one.loglikelihood(requests)
    for (a, greedy_a), (b, greedy_b) in zip(batched, single, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
        assert greedy_a == greedy_b


def test_truncation_keeps_continuation_and_whole_images():
    image_id, block = 9, 3
    context = [1, 9, 9, 9, 5, 6, 9, 9, 9, 7]
    row = ScoreRow(context, [8, 8], ["first", "second"])
    left = fit_to_length(row, limit=9, side="left", image_token_id=image_id, block=block)
    # Cutting 3 tokens would split the first image: it goes whole.
    assert left.context == [5, 6, 9, 9, 9, 7] and left.images == ["second"]
    assert left.continuation == [8, 8]
    right = fit_to_length(row, limit=9, side="right", image_token_id=image_id, block=block)
    assert right.context == [1, 9, 9, 9, 5, 6] and right.images == ["first"]
    with pytest.raises(CompassInputError, match="max_length"):
        fit_to_length(row, limit=2, side="left", image_token_id=image_id, block=block)


def test_middle_truncation_keeps_the_head_and_the_end():
    """EDINET-Bench's instructions come first and the answer cue last: `middle` cuts between."""
    text = ScoreRow(list(range(20)), [99], [])
    cut = fit_to_length(text, limit=11, side="middle", image_token_id=9, block=3, keep_head=4)
    assert cut.context == [0, 1, 2, 3, 14, 15, 16, 17, 18, 19] and cut.continuation == [99]
    # an image across either edge of the cut is dropped whole
    image_id, block = 9, 3
    row = ScoreRow([1, 9, 9, 9, 5, 6, 9, 9, 9, 7], [8], ["first", "second"])
    cut = fit_to_length(
        row, limit=8, side="middle", image_token_id=image_id, block=block, keep_head=2
    )
    assert cut.context == [1, 5, 6, 9, 9, 9, 7] and cut.images == ["second"]


def test_bad_model_args_are_named(tiny_checkpoint):
    with pytest.raises(
        CompassInputError, match="--model_args: unknown key 'colour' — use one of pretrained, phase"
    ):
        CompassLM(pretrained=str(tiny_checkpoint), colour="red")
    with pytest.raises(CompassInputError, match="truncation: 'centre' is not one of left"):
        CompassLM(pretrained=str(tiny_checkpoint), truncation="centre")
    with pytest.raises(CompassInputError, match="keep_head_tokens: expected int, got 'many'"):
        CompassLM(pretrained=str(tiny_checkpoint), truncation="middle", keep_head_tokens="many")


def test_truncated_requests_are_counted(tiny_checkpoint):
    lm = CompassLM(pretrained=str(tiny_checkpoint), max_length=16, truncation="middle")
    long = _request("generate_until", "決算 " * 40, {"max_gen_toks": 2})
    lm.generate_until([long, _request("generate_until", "短い", {"max_gen_toks": 2})])
    info = lm.get_model_info()
    assert info["compass_truncated_requests"] == 1 and info["compass_truncation"] == "middle"


def test_generation_without_an_image_returns_text(lm):
    (text,) = lm.generate_until([_request("generate_until", "問題: 3 + 5 =", {"max_gen_toks": 6})])
    assert isinstance(text, str)
