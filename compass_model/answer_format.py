"""The P2 answer format, `<Problem>…</Problem><Thinking>…</Thinking><Answer>\\boxed{…}</Answer>`,
and how a final answer is read and compared: one implementation, so what the distillation keeps
and what `gsm8k_cot_xml` scores agree.

Answers are compared as numbers where both sides are numbers, written the way models write them
(`\\frac{10}{2}`, `1{,}000`, `\\$5`, `−5`, `18 \\text{ apples}`, `25\\%`, `x = 5`), so `5.50`
equals `5.5` and `1,000` (a GSM8K reference writes `#### 1,000`) equals `1000`.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

_BOX_OPEN = "\\boxed{"
# A generation stopped at "</Answer>" loses the closing tag: an open last block still counts.
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL | re.IGNORECASE)

# A number as written in running text; a minus is a sign only where it does not join two
# numbers ("10-12" ends in 12, not -12).
_NUMBER_IN_TEXT = re.compile(r"(?:(?<![\w.)}])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
# After clean-up a numeric answer is one number, optionally a currency sign before it and a
# unit after it ("18 apples", "5 円").
_NUMBER_ANSWER = re.compile(
    r"[$¥€£]?(?P<number>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+|(?=\.\d))(?:\.\d+)?(?:/\d+(?:\.\d+)?)?)"
    r"(?:\s*[^\W\d_][^\d]*)?"
)
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_FRACTION = re.compile(r"(?<!\d)\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SPACES = re.compile(r"\\[,!;: ]|~")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2012": "-", "\ufe63": "-"})


def boxed_contents(text: str) -> list[str]:
    """Contents of every complete `\\boxed{…}` in order, braces balanced (`\\frac{1}{2}` nests);
    a box left open at the end is not an answer."""
    contents, start = [], text.find(_BOX_OPEN)
    while start >= 0:
        depth, begin, end = 0, start + len(_BOX_OPEN), None
        for position in range(begin, len(text)):
            if text[position] == "{":
                depth += 1
            elif text[position] == "}":
                if depth == 0:
                    end = position
                    break
                depth -= 1
        if end is None:
            break
        contents.append(text[begin:end])
        start = text.find(_BOX_OPEN, end + 1)
    return contents


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{…}`, empty or not (the training-data check rejects
    an empty one by name)."""
    contents = boxed_contents(text)
    return contents[-1] if contents else None


def boxed_answer(output: str) -> str | None:
    """The last non-empty `\\boxed{}` in the last `<Answer>` block (tag in any case), or None: a
    malformed output."""
    blocks = _ANSWER_BLOCK.findall(output)
    filled = [box.strip() for box in boxed_contents(blocks[-1]) if box.strip()] if blocks else []
    return filled[-1] if filled else None


def final_answer(output: str) -> str | None:
    """The answer of a chain-of-thought completion: its boxed answer, else its last number."""
    boxed = boxed_answer(output)
    if boxed is not None:
        return boxed
    numbers = _NUMBER_IN_TEXT.findall(output.translate(_MINUS_SIGNS))
    return numbers[-1] if numbers else None


def answer_value(answer: str) -> Fraction | None:
    """The number an answer states, or None where it is not one number (`10-12`, `x+1`)."""
    text = unicodedata.normalize("NFKC", answer).translate(_MINUS_SIGNS)
    text = text.replace("\\$", "").replace("\\%", "").replace("%", "")
    text = _LATEX_SPACES.sub("", text)
    text = _TEXT_WRAPPERS.sub(r" \1 ", text)
    text = _FRACTION.sub(r"\1/\2", text)
    text = text.replace("{", "").replace("}", "").replace("$", "")
    text = text.rsplit("=", 1)[-1].strip().rstrip(".。").strip()
    match = _NUMBER_ANSWER.fullmatch(text)
    if match is None:
        return None
    try:
        return Fraction(match["number"].replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _comparable_text(text: str) -> str:
    """NFKC (full-width digits → ASCII), lower case, no whitespace, no thousands commas."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())
    return re.sub(r"(?<=\d),(?=\d{3})", "", text)


def answers_match(answer: str, reference: str) -> bool:
    """Numerically where both are numbers (5.50 = 5.5 = \\frac{11}{2}), else as normalised text."""
    ours, theirs = answer_value(answer), answer_value(reference)
    if ours is not None and theirs is not None:
        return ours == theirs
    return _comparable_text(answer) == _comparable_text(reference)


def gsm8k_final(solution: str) -> str:
    """The final answer of a GSM8K reference solution: the text after `####`."""
    return solution.split("####")[-1].strip()
