"""Scoring of gsm8k_cot_xml: the boxed answer inside <Answer>, else the last number."""

from __future__ import annotations

from typing import Any

from compass_eval.metrics import boxed_answer, extract_xml_answer, gsm8k_reference, normalize_number


def xml_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match against the reference's `#### N`; `malformed` counts outputs with no boxed
    answer in an <Answer> block (scored by the fallback, usually wrong, never an error)."""
    output = results[0]
    answer = extract_xml_answer(output)
    correct = answer is not None and normalize_number(answer) == gsm8k_reference(doc["answer"])
    return {"exact_match": float(correct), "malformed": float(boxed_answer(output) is None)}
