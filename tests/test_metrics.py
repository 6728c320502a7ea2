"""Compass metrics against hand-computed values, and gsm8k_cot_xml answer extraction."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from clitools import REPO, SHARED_DATA
from sklearn.metrics import roc_auc_score

from compass_eval import metrics


def _gsm8k_utils():
    spec = importlib.util.spec_from_file_location("gsm8k_utils", REPO / "tasks/gsm8k/utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roc_auc_equals_sklearn_and_the_hand_count():
    labels = [0, 0, 1, 1, 0, 1, 1, 0]
    probabilities = [0.1, 0.4, 0.35, 0.8, 0.65, 0.9, 0.2, 0.3]
    items = [[y, p] for y, p in zip(labels, probabilities, strict=True)]
    # 16 (positive, negative) pairs; the positive ranks higher in 11 of them.
    assert metrics.roc_auc(items) == pytest.approx(11 / 16)
    assert metrics.roc_auc(items) == pytest.approx(roc_auc_score(labels, probabilities))


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_roc_auc_with_one_class_is_undefined_not_half_and_no_crash(labels):
    value = metrics.roc_auc([[y, 0.7] for y in labels])
    assert math.isnan(value)


def test_positive_probability_normalises_over_the_two_answers():
    assert metrics.positive_probability(-2.0, -2.0) == pytest.approx(0.5)
    # P(yes) / P(no) = 3  ->  P(yes) = 3 / 4
    assert metrics.positive_probability(0.0, math.log(3.0)) == pytest.approx(0.75)


def test_binary_f1_and_mcc_on_a_fixed_confusion():
    # TP=2, FN=1, FP=1, TN=2
    items = [[1, 1], [1, 1], [1, 0], [0, 1], [0, 0], [0, 0]]
    assert metrics.binary_f1(items) == pytest.approx(2 / 3)
    assert metrics.mcc(items) == pytest.approx((2 * 2 - 1 * 1) / 9)


def test_chabsa_f1_is_macro_f1_times_one_and_a_half_with_neutral_as_a_third_class():
    # gold: positive=0, negative=1, neutral=-100 (not an offered choice); preds 0/1 only.
    items = [[0, 0], [0, 0], [0, 1], [1, 1], [1, 0], [-100, 0]]
    # F1(positive)=2*2/(2*2+2+1)=4/7, F1(negative)=2/(2+1+1)=1/2, F1(neutral)=0
    assert metrics.chabsa_f1(items) == pytest.approx((4 / 7 + 1 / 2 + 0) / 3 * 1.5)


def test_industry_macro_f1_by_hand():
    items = [[0, 0], [0, 1], [1, 1], [2, 2]]
    # F1 per class: 2/3, 2/3, 1
    assert metrics.macro_f1(items) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_every_gsm8k_test_reference_in_xml_form_is_extracted_and_scored_correct():
    xml_results = _gsm8k_utils().xml_results
    rows = [json.loads(line) for line in (SHARED_DATA / "gsm8k/test.jsonl").open()]
    correct = 0
    for row in rows:
        reasoning, final = row["answer"].split("####")
        output = (
            f"<Problem>{row['question']}</Problem><Thinking>{reasoning.strip()}</Thinking>"
            f"<Answer>\\boxed{{{final.strip()}}}"
        )
        scores = xml_results(row, [output + "</Answer>"])
        correct += scores["exact_match"] == 1.0 and scores["malformed"] == 0.0
    assert (correct, len(rows)) == (1319, 1319)


@pytest.mark.parametrize(
    "output",
    [
        "",
        "I do not know.",
        "<Answer>\\boxed{</Answer>",
        "<Answer>seventeen</Answer>",
        "<Answer>\\boxed{}</Answer>",
        "<Thinking>16 - 3 - 4 = 9</Thinking><Answer>\\boxed{99}</Answer>",
    ],
)
def test_malformed_or_wrong_outputs_score_wrong_and_are_counted(output):
    doc = {"question": "q", "answer": "Janet sells 9 eggs.\n#### 18"}
    scores = _gsm8k_utils().xml_results(doc, [output])
    assert scores["exact_match"] == 0.0
    assert scores["malformed"] == (0.0 if output.startswith("<Thinking>") else 1.0)


def test_fallback_to_the_last_number_when_the_answer_block_is_missing():
    doc = {"question": "q", "answer": "#### 18"}
    for output in ("so 9 * 2 = 18", "\\boxed{18} without the answer tags"):
        scores = _gsm8k_utils().xml_results(doc, [output])
        assert scores == {"exact_match": 1.0, "malformed": 1.0}
