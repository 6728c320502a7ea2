"""Compass's log-likelihood variant of the EDINET-Bench tasks: EDINET-Bench's instruction and
report layout, the report cut by the recorded budget, then a question and an answer cue whose
answers are scored by loglikelihood."""

from __future__ import annotations

from typing import Any

import numpy as np

from compass_eval.data.edinet import INDUSTRIES, upstream_prompt
from compass_eval.metrics import positive_probability

EARNINGS_QUESTION = (
    "\n\nQuestion: Will net income attributable to owners of the parent increase in the next "
    "fiscal year? Answer Yes or No.\nAnswer:"
)
FRAUD_QUESTION = (
    "\n\nQuestion: Does this securities report show signs of fraud? Answer Yes or No.\nAnswer:"
)
INDUSTRY_QUESTION = (
    "\n\nQuestion: Which of the categories above does this company belong to?\nAnswer:"
)


def earnings_prompt(doc: dict[str, Any]) -> str:
    return upstream_prompt("earnings_forecast") + doc["report"] + EARNINGS_QUESTION


def fraud_prompt(doc: dict[str, Any]) -> str:
    return upstream_prompt("fraud_detection") + doc["report"] + FRAUD_QUESTION


def industry_prompt(doc: dict[str, Any]) -> str:
    return upstream_prompt("industry_prediction") + doc["report"] + INDUSTRY_QUESTION


def binary_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    """Choices are ["No", "Yes"]; P(Yes) normalised over the two answers drives every metric."""
    (loglik_no, _), (loglik_yes, _) = results
    probability = positive_probability(loglik_no, loglik_yes)
    gold, pred = int(doc["gold"]), int(probability >= 0.5)
    return {
        "roc_auc": [gold, probability],
        "acc": float(pred == gold),
        "f1": [gold, pred],
        "mcc": [gold, pred],
    }


def industry_choices(doc: dict[str, Any]) -> list[str]:
    return list(INDUSTRIES)


def industry_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    """`acc` by the summed loglikelihood; `acc_norm` as lm-eval 0.4.13 computes it, by the
    loglikelihood per character of the label, so that short labels (小売, 銀行) win no more often
    than long ones by their length alone."""
    logliks = np.array([loglik for loglik, _ in results])
    lengths = np.array([float(len(label)) for label in INDUSTRIES])
    gold = int(doc["gold"])
    pred = int(np.argmax(logliks))
    return {
        "acc": float(pred == gold),
        "acc_norm": float(int(np.argmax(logliks / lengths)) == gold),
        "macro_f1": [gold, pred],
    }
