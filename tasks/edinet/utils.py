"""Scoring for the EDINET-Bench tasks: probabilities from answer loglikelihoods, and the prompt
of the 16-way industry task (its option list comes from the label table in code)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compass_eval.data.edinet import INDUSTRIES
from compass_eval.metrics import positive_probability

INDUSTRY_INSTRUCTION = (
    "Please analyze the following information extracted from a Japanese company's securities "
    "report and predict the industry the company belongs to. Please note that some data may be "
    'missing and represented as "-" due to parsing errors.'
)


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


def industry_prompt(doc: dict[str, Any]) -> str:
    options = ", ".join(INDUSTRIES)
    return (
        f"{INDUSTRY_INSTRUCTION}\n\n{doc['report']}\n\n"
        f"Question: Which industry does this company belong to? Choose one of: {options}.\n"
        "Industry:"
    )


def industry_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    pred = int(np.argmax([loglik for loglik, _ in results]))
    gold = int(doc["gold"])
    return {"acc": float(pred == gold), "macro_f1": [gold, pred]}
