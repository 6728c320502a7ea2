"""Checks on teacher output, each failing with a named reason: parsing, emptiness, grounding in the
page's text layer, recomputation of numeric answers, the chain-of-thought XML and its boxed answer."""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal, DivisionByZero, InvalidOperation

from compass_model.answer_format import last_boxed


class Rejected(Exception):
    """A teacher output that must not become a training record; `reason` is what gets counted."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize(text: str) -> str:
    """For comparison only: NFKC (full-width digits → ASCII), no whitespace, no thousands commas."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\s+", "", text)
    return re.sub(r"(?<=\d),(?=\d{3})", "", text)


def require_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejected("empty_answer", f"{what} is empty")
    return value.strip()


def grounded(value: str, page_text: str) -> bool:
    """The value occurs in the page text; a number must occur as a whole number, not inside one."""
    needle, haystack = normalize(value), normalize(page_text)
    if not needle:
        return False
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", needle):
        return re.search(rf"(?<![\d.]){re.escape(needle)}(?![\d]|\.\d)", haystack) is not None
    return needle in haystack


def parse_json(text: str, expected: type) -> object:
    """The first JSON value of `expected` type in the output, tolerating code fences and chatter."""
    opener = "[" if expected is list else "{"
    decoder = json.JSONDecoder()
    for start in (match.start() for match in re.finditer(re.escape(opener), text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, expected):
            return value
    raise Rejected("unparseable", f"no JSON {expected.__name__} in the output")


_NUMBER = re.compile(r"[△▲−\-+]?\d+(?:\.\d+)?")


def parse_number(text: str) -> Decimal | None:
    """A number as printed in Japanese financial documents: full-width, commas, △ for minus."""
    match = _NUMBER.search(normalize(text))
    if match is None:
        return None
    token = re.sub(r"^[△▲−]", "-", match.group())
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


def _compute(operation: str, values: list[Decimal]) -> Decimal:
    first, rest = values[0], values[1:]
    if operation == "add":
        return sum(values, Decimal(0))
    if operation == "subtract":
        return first - sum(rest, Decimal(0))
    if operation == "multiply":
        product = Decimal(1)
        for value in values:
            product *= value
        return product
    if len(values) != 2:
        raise Rejected("unparseable", f"{operation} takes two operands, got {len(values)}")
    if operation == "divide":
        return first / rest[0]
    if operation == "ratio_percent":
        return first / rest[0] * 100
    if operation == "growth_percent":
        return (rest[0] - first) / first * 100
    raise Rejected("unparseable", f"unknown operation {operation!r}")


def check_computation(operation: str, operands: list[str], answer: str) -> Decimal:
    """Recomputes the answer from the stated operands; agreement to the answer's printed precision."""
    values = [parse_number(operand) for operand in operands]
    given = parse_number(answer)
    if len(values) < 2 or given is None or any(value is None for value in values):
        raise Rejected("unparseable", "operands or answer are not numbers")
    try:
        expected = _compute(operation, values)  # type: ignore[arg-type]
    except (DivisionByZero, InvalidOperation):
        raise Rejected("wrong_computation", "division by zero") from None
    decimals = max(0, -given.as_tuple().exponent)  # type: ignore[operator]
    tolerance = max(Decimal(5) * Decimal(10) ** -(decimals + 1), abs(expected) * Decimal("1e-9"))
    if abs(expected - given) > tolerance:
        raise Rejected("wrong_computation", f"{operation}{operands} = {expected}, not {answer}")
    return expected


def ocr_agreement(transcription: str, page_text: str) -> float:
    """F1 of character bigrams: robust to reading order and line breaks, cheap on long pages."""

    def bigrams(text: str) -> dict[str, int]:
        text = normalize(text)
        counts: dict[str, int] = {}
        for index in range(len(text) - 1):
            counts[text[index : index + 2]] = counts.get(text[index : index + 2], 0) + 1
        return counts

    ours, theirs = bigrams(transcription), bigrams(page_text)
    overlap = sum(min(count, theirs.get(gram, 0)) for gram, count in ours.items())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(ours.values()), overlap / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)


_COT = re.compile(
    r"\s*<Problem>(?P<problem>.*?)</Problem>\s*<Thinking>(?P<thinking>.*?)</Thinking>"
    r"\s*<Answer>(?P<answer>.*?)</Answer>\s*",
    re.DOTALL,
)


def check_cot_xml(text: str) -> str:
    """The boxed answer of a well-formed `<Problem>/<Thinking>/<Answer>\\boxed{}` output."""
    match = _COT.fullmatch(text)
    if match is None:
        raise Rejected(
            "malformed_xml", "not <Problem>…</Problem><Thinking>…</Thinking><Answer>…</Answer>"
        )
    if not match["problem"].strip() or not match["thinking"].strip():
        raise Rejected("malformed_xml", "empty <Problem> or <Thinking>")
    boxed = last_boxed(match["answer"])
    if boxed is None:
        if not match["answer"].strip():
            raise Rejected("empty_answer", "empty <Answer>")
        raise Rejected("no_boxed_answer", "<Answer> holds no \\boxed{}")
    if not boxed.strip():
        raise Rejected("empty_answer", "\\boxed{} is empty")
    return boxed.strip()
