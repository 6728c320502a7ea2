"""EDINET-Bench's protocol: the user text its scripts send, and the reply read as they read it.

Per-sample values (what the report resamples): `roc_auc` is `[label, prob]`, and `acc`,
`precision`, `recall`, `f1`, `mcc` are `[label, prediction]`; in a reply without a usable `prob`
and `prediction`, prob and prediction are None and every aggregation skips the row, as
EDINET-Bench's make_leaderboard.py drops it. `parsed_fraction` is 1.0 or 0.0 per reply.
Industry: `acc` is 1.0 or 0.0 for a reply that names a category, None for one that does not.
"""

from __future__ import annotations

import math
from typing import Any

from compass_eval.data.edinet import user_text
from compass_eval.metrics import extract_json_reply


def earnings_text(doc: dict[str, Any]) -> str:
    return user_text("earnings_forecast", doc)


def fraud_text(doc: dict[str, Any]) -> str:
    return user_text("fraud_detection", doc)


def industry_text(doc: dict[str, Any]) -> str:
    return user_text("industry_prediction", doc)


def _fields(reply: str) -> dict[str, Any]:
    parsed = extract_json_reply(reply)
    return parsed if isinstance(parsed, dict) else {}


def _probability(value: Any) -> float | None:
    try:
        probability = float(value)
    except (TypeError, ValueError):
        return None
    return probability if math.isfinite(probability) else None


def _prediction(value: Any) -> int | None:
    """`int(prediction)` as make_leaderboard.py takes it; only a 0/1 answer is a binary one."""
    try:
        prediction = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return prediction if prediction in (0, 1) else None


def binary_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    fields = _fields(results[0])
    prob, pred = _probability(fields.get("prob")), _prediction(fields.get("prediction"))
    if prob is None or pred is None:
        prob = pred = None
    label = int(doc["label"])
    return {
        "roc_auc": [label, prob],
        **{name: [label, pred] for name in ("acc", "precision", "recall", "f1", "mcc")},
        "parsed_fraction": float(pred is not None),
    }


def industry_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    prediction = _fields(results[0]).get("prediction")
    return {
        "acc": None if prediction is None else float(prediction == doc["industry"]),
        "parsed_fraction": float(prediction is not None),
    }
