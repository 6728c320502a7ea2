"""Scoring of gsm8k_cot_xml: the boxed answer inside <Answer>, else the last number."""

from __future__ import annotations

from typing import Any

from compass_model.answer_format import answers_match, boxed_answer, final_answer, gsm8k_final


def xml_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """exact_match against the reference's `#### N`, compared as numbers; `malformed` counts
    outputs with no boxed answer in an <Answer> block (scored by the fallback, never an error)."""
    output = results[0]
    answer = final_answer(output)
    correct = answer is not None and answers_match(answer, gsm8k_final(doc["answer"]))
    return {"exact_match": float(correct), "malformed": float(boxed_answer(output) is None)}
