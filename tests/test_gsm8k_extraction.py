"""`gsm8k_cot_xml` answer extraction and comparison on the forms models write, scored by the
task's own `process_results` against GSM8K references written as the real data writes them."""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction

import pytest
from clitools import REPO, SHARED_DATA

from compass_model.answer_format import answer_value, answers_match, final_answer


def _xml_results():
    spec = importlib.util.spec_from_file_location("gsm8k_utils", REPO / "tasks/gsm8k/utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.xml_results


def _in_answer(boxed: str) -> str:
    return f"<Problem>p</Problem><Thinking>t</Thinking><Answer>\\boxed{{{boxed}}}</Answer>"


# completion -> the value it answers (None: no number to score)
TABLE = [
    (_in_answer("18"), Fraction(18)),
    (_in_answer("\\frac{10}{2}"), Fraction(5)),
    (_in_answer("\\dfrac{9}{3}"), Fraction(3)),
    (_in_answer("\\tfrac{1}{4}"), Fraction(1, 4)),
    (_in_answer("-\\frac{1}{2}"), Fraction(-1, 2)),
    (_in_answer("1{,}000"), Fraction(1000)),
    (_in_answer("1\\,000"), Fraction(1000)),
    (_in_answer("1,000"), Fraction(1000)),
    (_in_answer("1,234,567"), Fraction(1234567)),
    (_in_answer("\\$5"), Fraction(5)),
    (_in_answer("$5.00"), Fraction(5)),
    (_in_answer("\u22125"), Fraction(-5)),
    (_in_answer("-7"), Fraction(-7)),
    (_in_answer("18 \\text{ apples}"), Fraction(18)),
    (_in_answer("\\text{18}"), Fraction(18)),
    (_in_answer("\\textbf{42}"), Fraction(42)),
    (_in_answer("25\\%"), Fraction(25)),
    (_in_answer("25%"), Fraction(25)),
    (_in_answer("x = 5"), Fraction(5)),
    (_in_answer("{{5}}"), Fraction(5)),
    (_in_answer("5.50"), Fraction(11, 2)),
    (_in_answer("5.5"), Fraction(11, 2)),
    (_in_answer("18."), Fraction(18)),
    (_in_answer("18.0"), Fraction(18)),
    (_in_answer("０１８"), Fraction(18)),  # full-width digits
    (_in_answer(" 7 "), Fraction(7)),
    ("<answer>\\boxed{12}</answer>", Fraction(12)),  # lower-case tag
    ("<ANSWER>\\boxed{12}", Fraction(12)),  # open block cut by the stop sequence
    ("<Answer>\\boxed{3}\\boxed{4}</Answer>", Fraction(4)),
    ("<Answer>\\boxed{4}\\boxed{}</Answer>", Fraction(4)),  # the last *non-empty* box
    ("<Answer>\\boxed{4}\\boxed{ }</Answer>", Fraction(4)),
    ("<Answer>\\boxed{3}</Answer> then <Answer>\\boxed{9}</Answer>", Fraction(9)),
    ("<Thinking>\\boxed{2}</Thinking><Answer>\\boxed{6}</Answer>", Fraction(6)),
    # No boxed answer: the last number of the output, a minus joining two numbers is no sign.
    ("The range is 10-12", Fraction(12)),
    ("So she pays $1,200.", Fraction(1200)),
    ("It drops to -3 degrees", Fraction(-3)),
    ("It drops to \u22123 degrees", Fraction(-3)),
    ("<Answer>\\boxed{}</Answer> 17 eggs", Fraction(17)),
    ("<Answer>\\boxed{18</Answer>", Fraction(18)),  # unclosed box: falls back to the number
    (_in_answer("10-12"), None),  # a boxed range is not one number
    (_in_answer("x+1"), None),
    (_in_answer("seventeen"), None),
    ("I do not know.", None),
    ("", None),
]


def _value(output: str) -> Fraction | None:
    answer = final_answer(output)
    return None if answer is None else answer_value(answer)


@pytest.mark.parametrize(("output", "expected"), TABLE)
def test_extracted_value(output, expected):
    assert _value(output) == expected


@pytest.mark.parametrize(("output", "expected"), TABLE)
def test_task_scores_the_value_against_a_gsm8k_reference(output, expected):
    xml_results = _xml_results()
    if expected is None:
        scores = xml_results({"answer": "steps\n#### 18"}, [output])
        assert scores["exact_match"] == 0.0
        return
    if expected.denominator == 1:
        whole = int(expected)
        reference = f"{whole:,}" if abs(whole) >= 1000 else str(whole)  # as GSM8K writes it
    else:
        reference = str(float(expected))
    assert xml_results({"answer": f"steps\n#### {reference}"}, [output])["exact_match"] == 1.0
    wrong = xml_results({"answer": f"steps\n#### {expected + 1}"}, [output])
    assert wrong["exact_match"] == 0.0


@pytest.mark.parametrize(
    ("output", "malformed"),
    [
        (_in_answer("18"), 0.0),
        ("<answer>\\boxed{18}</answer>", 0.0),
        ("<Answer>\\boxed{}</Answer> 18", 1.0),
        ("<Answer>18</Answer>", 1.0),
        ("\\boxed{18}", 1.0),  # a box outside any <Answer> block
    ],
)
def test_malformed_counts_outputs_without_a_boxed_answer_in_an_answer_block(output, malformed):
    assert _xml_results()({"answer": "#### 18"}, [output])["malformed"] == malformed


def test_numbers_compare_numerically_and_other_answers_as_text():
    assert answers_match("5.50", "5.5") and answers_match("1,000", "1000")
    assert answers_match("\\frac{1}{2}", "0.5") and not answers_match("19", "18")
    assert answers_match("東京", "東京") and not answers_match("x+1", "x+2")


def test_every_real_gsm8k_reference_reads_as_a_whole_number():
    for split in ("train", "test"):
        for line in (SHARED_DATA / "gsm8k" / f"{split}.jsonl").open(encoding="utf-8"):
            final = json.loads(line)["answer"].split("####")[-1].strip()
            value = answer_value(final)
            assert value is not None and value.denominator == 1, final
            assert value == int(final.replace(",", ""))
