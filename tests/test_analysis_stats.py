"""Bootstrap statistics against references computed independently of the vectorised code."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef, roc_auc_score

from compass_eval.analysis import resampling, stats
from compass_eval.analysis.samples import load_sample_log

VALUES = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0])


def _resample_index(n, iters, seed):
    # the documented procedure: row b of default_rng(seed).integers(0, n, (iters, n)) is resample b
    return np.random.default_rng(seed).integers(0, n, size=(iters, n))


def test_bootstrap_ci_of_a_mean_matches_a_hand_reference(tmp_path):
    log_file = tmp_path / "samples_cma_basics_2026-01-01T00-00-00.000000.jsonl"
    log_file.write_text(
        "".join(
            f'{{"doc_id": {i}, "doc_hash": "h{i}", "filter": "none", "acc": {v}}}\n'
            for i, v in enumerate(VALUES)
        )
    )
    log = load_sample_log(log_file, "acc", "none", count_choices=False)
    replicates = stats.mean(resampling.resample_counts(8, 5, 7).astype(float), log.values)
    # Plain Python over the same draws: mean of the drawn values, one resample at a time.
    index = _resample_index(8, 5, 7)
    by_hand = [sum(VALUES[i] for i in row) / 8 for row in index]
    assert replicates.tolist() == pytest.approx(by_hand, abs=1e-15)
    # With 5 replicates sorted r0..r4, numpy's linear percentile 2.5 sits at 0.1 of the way
    # from r0 to r1 and 97.5 at 0.9 of the way from r3 to r4.
    r = sorted(by_hand)
    expected = (r[0] + 0.1 * (r[1] - r[0]), r[3] + 0.9 * (r[4] - r[3]))
    assert resampling.percentile_interval(replicates, 0.95) == pytest.approx(expected, abs=1e-15)


def test_degenerate_sample_has_a_point_interval():
    replicates = stats.mean(resampling.resample_counts(6, 50, 1).astype(float), np.ones(6))
    assert resampling.percentile_interval(replicates, 0.95) == (1.0, 1.0)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60).astype(float)
    # rounded scores make ties, which ROC-AUC counts half
    scores = np.round(0.3 * labels + rng.random(60), 1)
    preds = np.where(rng.random(60) < 0.7, labels, 1 - labels)
    return labels, scores, preds


def test_roc_auc_per_resample_equals_sklearn(pairs):
    labels, scores, _ = pairs
    values = np.column_stack([labels, scores])
    index = _resample_index(60, 20, 11)
    got = stats.roc_auc(resampling.resample_counts(60, 20, 11), values)
    expected = [roc_auc_score(labels[row], scores[row]) for row in index]
    assert got == pytest.approx(expected, abs=1e-12)
    assert stats.Statistic(stats.ROC_AUC).point(values) == pytest.approx(
        roc_auc_score(labels, scores)
    )


def test_f1_and_mcc_per_resample_equal_sklearn(pairs):
    labels, _, preds = pairs
    gold3 = np.where(labels == 1, 2.0, np.arange(60) % 2)  # three classes for the macro case
    values = np.column_stack([gold3, preds])
    index = _resample_index(60, 20, 5)
    weights = resampling.resample_counts(60, 20, 5).astype(float)
    chabsa = stats.statistic_for("f1", "2class_adjusted_macro_f1_score_for_chabsa", pairs=True)
    assert chabsa(weights, values) == pytest.approx(
        [1.5 * f1_score(gold3[r], preds[r], average="macro") for r in index], abs=1e-12
    )
    assert stats.Statistic(stats.MCC)(weights, values) == pytest.approx(
        [matthews_corrcoef(gold3[r], preds[r]) for r in index], abs=1e-12
    )
    binary = np.column_stack([labels, preds])
    assert stats.Statistic(stats.BINARY_F1)(weights, binary) == pytest.approx(
        [f1_score(labels[r], preds[r]) for r in index], abs=1e-12
    )


def test_statistic_chosen_from_lm_eval_aggregation():
    kind = lambda *args: stats.statistic_for(*args).kind  # noqa: E731
    assert kind("acc", "mean", False) == stats.MEAN
    assert kind("roc_auc", "<function roc_auc>", True) == stats.ROC_AUC
    assert kind("f1", "f1", True) == stats.BINARY_F1
    assert kind("f1", "macro_f1_score", True) == stats.MACRO_F1
    assert kind("mcc", "matthews_corrcoef", True) == stats.MCC
    assert stats.statistic_for("bleu", "bleu", pairs=True) is None
    assert kind("macro_f1", "def macro_f1(items): ...", True) == stats.MACRO_F1
    # the compass tasks record a `!function` aggregation as its source code
    chabsa_source = 'def chabsa_f1(items):\n    return f1_score(g, p, average="macro") * 1.5'
    chabsa = stats.statistic_for("f1", chabsa_source, pairs=True)
    values = np.array([[0, 0], [1, 1], [2, 1]], dtype=float)  # neutral gold, never predicted
    by_hand = 1.5 * (1.0 + 2 / 3 + 0.0) / 3  # per-class F1: 1, 2*1/(2*1+1), 0
    assert chabsa.point(values) == pytest.approx(by_hand)


def test_draws_in_blocks_equal_one_big_draw():
    """The documented procedure holds past one block of rows (1,024)."""
    counts = resampling.resample_counts(7, 2100, 3)
    index = _resample_index(7, 2100, 3)
    assert np.array_equal(counts, np.stack([np.bincount(r, minlength=7) for r in index]))


def test_streams_are_independent_but_repeatable():
    a = resampling.stream_seed(1234, "cma_basics")
    assert a == resampling.stream_seed(1234, "cma_basics")
    assert a != resampling.stream_seed(1234, "fp2") != resampling.stream_seed(1, "fp2")
