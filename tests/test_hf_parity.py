"""On text, with the same language-model weights, `compass` scores exactly as lm-eval's `hf`."""

from __future__ import annotations

import pytest
from clitools import SHARED_DATA
from lm_eval import simple_evaluate
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from compass_eval.lm import CompassLM
from compass_model.checkpoint import export_language_model, load_checkpoint


@pytest.fixture(scope="module")
def language_model_dir(tiny_checkpoint, tmp_path_factory):
    checkpoint = load_checkpoint(tiny_checkpoint)
    return export_language_model(
        checkpoint.model, checkpoint.processor, tmp_path_factory.mktemp("hf") / "lm"
    )


def _evaluate(model: str, model_args: str, task: str, batch_size: int, limit: int | None) -> dict:
    return simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[task],
        device="cpu",
        batch_size=batch_size,
        limit=limit,
        log_samples=True,
    )


# cma_basics: answers are whole texts. cpa_audit-1.0-0.1: answers (アイ, アウ, …) begin alike, so
# they share tokens beyond the context; at batch 8 several questions share each forward row.
@pytest.mark.parametrize(
    ("task", "batch_size", "limit", "n_docs"),
    [("cma_basics", 1, None, 38), ("cpa_audit-1.0-0.1", 8, 24, 24)],
)
def test_loglikelihoods_and_accuracy_match_hf(
    tiny_checkpoint, language_model_dir, monkeypatch, task, batch_size, limit, n_docs
):
    monkeypatch.setenv("COMPASS_DATA_DIR", str(SHARED_DATA))
    ours = _evaluate("compass", f"pretrained={tiny_checkpoint}", task, batch_size, limit)
    theirs = _evaluate("hf", f"pretrained={language_model_dir}", task, batch_size, limit)
    our_samples = sorted(ours["samples"][task], key=lambda s: s["doc_id"])
    their_samples = sorted(theirs["samples"][task], key=lambda s: s["doc_id"])
    assert len(our_samples) == len(their_samples) == n_docs
    compared = 0
    for mine, hers in zip(our_samples, their_samples, strict=True):
        for (ll_mine, greedy_mine), (ll_hers, greedy_hers) in zip(
            mine["filtered_resps"], hers["filtered_resps"], strict=True
        ):
            assert float(ll_mine) == pytest.approx(float(ll_hers), abs=1e-4)
            assert greedy_mine == greedy_hers
            compared += 1
    assert compared > n_docs
    for metric in ("acc,none", "acc_norm,none"):
        assert ours["results"][task][metric] == theirs["results"][task][metric]


def test_without_bos_scores_match_hf_without_bos(tiny_checkpoint, language_model_dir):
    """add_bos_token=False: what lm-eval's vLLM backend scores (the JP Fin leaderboard's runs)."""
    requests = [
        Instance("loglikelihood", {}, ("売上高は", "増加しました"), idx=0),
        Instance("loglikelihood", {}, ("監査意見は", "適正"), idx=1),
    ]
    with_bos = CompassLM(pretrained=str(tiny_checkpoint)).loglikelihood(requests)
    ours = CompassLM(pretrained=str(tiny_checkpoint), add_bos_token=False).loglikelihood(requests)
    theirs = HFLM(
        pretrained=str(language_model_dir), device="cpu", add_bos_token=False
    ).loglikelihood(requests)
    for (mine, _), (hers, _), (bos, _) in zip(ours, theirs, with_bos, strict=True):
        assert mine == pytest.approx(hers, abs=1e-4)
        assert mine != pytest.approx(bos, abs=1e-3)


def test_rolling_loglikelihood_matches_hf(tiny_checkpoint, language_model_dir):
    text = (
        "当社グループの連結売上高は前年同期比で増加し、営業利益および経常利益も増益となりました。"
        * 3
    )
    request = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
    ours = CompassLM(pretrained=str(tiny_checkpoint), max_length=32)
    theirs = HFLM(pretrained=str(language_model_dir), device="cpu", max_length=32)
    (mine,) = ours.loglikelihood_rolling([request])
    (hers,) = theirs.loglikelihood_rolling([request])
    assert mine == pytest.approx(hers, abs=1e-4)
