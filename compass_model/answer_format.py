"""The P2 answer format, `<Problem>…</Problem><Thinking>…</Thinking><Answer>\\boxed{…}</Answer>`:
what the distillation keeps and what `gsm8k_cot_xml` scores read the boxed answer the same way."""

from __future__ import annotations


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{…}`, braces balanced (answers such as `\\frac{1}{2}` nest)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            if depth == 0:
                return text[begin:position]
            depth -= 1
    return None
