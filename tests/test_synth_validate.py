"""Validation really rejects, each with its reason: malformed chain-of-thought XML, a boxed answer
that disagrees with the reference, an empty answer, a VQA answer absent from the page text, a
computation that does not recompute, an OCR that does not match the text layer; and duplicates."""

from __future__ import annotations

import json

import pytest

from compass_model.answer_format import answers_match
from compass_train.synth.generators import FinQaGenerator, OcrGenerator, PageItem, VqaGenerator
from compass_train.synth.pages import Page
from compass_train.synth.sources import IndexedPdf
from compass_train.synth.teacher import TeacherRequest
from compass_train.synth.validate import (
    Rejected,
    check_computation,
    check_cot_xml,
    grounded,
    ocr_agreement,
)
from compass_train.synth.writer import Outcome, run_sharded

PAGE = Page(
    png=b"png",
    image_sha256="0" * 64,
    text="決算概要\n項目 金額\n売上高 1,200\n営業費用 900\n営業利益 300",
)
ITEM = PageItem(
    "vqa-x-p0001",
    IndexedPdf("a.pdf", "https://www.fsa.go.jp/a.pdf", "f" * 64, 1, "fsa", "金融庁", "PDL-1.0"),
    0,
)


def reason(call) -> str:
    with pytest.raises(Rejected) as rejected:
        call()
    return rejected.value.reason


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("答えは 18 です。", "malformed_xml"),
        ("<Problem>p</Problem><Answer>\\boxed{18}</Answer>", "malformed_xml"),
        ("<Thinking>t</Thinking><Problem>p</Problem><Answer>\\boxed{18}</Answer>", "malformed_xml"),
        (
            "<Problem>p</Problem><Thinking>t</Thinking><Answer>\\boxed{18}</Answer> 以上",
            "malformed_xml",
        ),
        (
            "<Problem>p</Problem><Thinking>t</Thinking><Answer>\\boxed{18</Answer>",
            "no_boxed_answer",
        ),
        ("<Problem>p</Problem><Thinking>t</Thinking><Answer>18</Answer>", "no_boxed_answer"),
        ("<Problem>p</Problem><Thinking>t</Thinking><Answer> </Answer>", "empty_answer"),
        ("<Problem>p</Problem><Thinking>t</Thinking><Answer>\\boxed{ }</Answer>", "empty_answer"),
    ],
)
def test_bad_chain_of_thought_is_rejected(output, expected):
    assert reason(lambda: check_cot_xml(output)) == expected


def test_well_formed_chain_of_thought_gives_its_last_boxed_answer():
    output = "<Problem>半分は?</Problem>\n<Thinking>\\boxed{2} ではなく</Thinking>\n<Answer>\\boxed{\\frac{1}{2}}</Answer>\n"
    assert check_cot_xml(output) == "\\frac{1}{2}"


@pytest.mark.parametrize(
    ("boxed", "reference", "match"),
    [
        ("18", "18", True),
        ("18.0", "18", True),
        ("\\frac{1}{2}", "0.5", True),
        ("$1,000", "1000", True),
        ("19", "18", False),
        ("x+1", "x+2", False),
        ("東京", "東京", True),
    ],
)
def test_boxed_answer_against_reference(boxed, reference, match):
    assert answers_match(boxed, reference) is match


def test_grounding_needs_the_value_on_the_page():
    assert grounded("1,200", PAGE.text) and grounded("１２００", PAGE.text)
    assert not grounded("200", PAGE.text)  # inside 1,200, not on the page as a number
    assert not grounded("1,300", PAGE.text) and not grounded("", PAGE.text)


def test_computations_are_recomputed_from_their_operands():
    assert check_computation("subtract", ["1,200", "900"], "300") == 300
    assert check_computation("ratio_percent", ["300", "1,200"], "25.0") == 25
    assert check_computation("growth_percent", ["△100", "50"], "-150") == -150
    assert (
        reason(lambda: check_computation("add", ["1,200", "900"], "2,000")) == "wrong_computation"
    )
    assert (
        reason(lambda: check_computation("ratio_percent", ["300", "1,200"], "26"))
        == "wrong_computation"
    )
    assert reason(lambda: check_computation("integrate", ["1", "2"], "3")) == "unparseable"


class Scripted:
    """Plays a fixed list of answers, for checking what the generators do with each."""

    model = "scripted"

    def __init__(self, *answers: object) -> None:
        self.answers = [
            a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in answers
        ]
        self.requests: list[TeacherRequest] = []

    def complete(self, request: TeacherRequest) -> str:
        self.requests.append(request)
        return self.answers[len(self.requests) - 1]


def run_generator(generator_class, *answers) -> tuple[Outcome, Scripted]:
    teacher = Scripted(*answers)
    outcome = Outcome()
    generator_class(teacher).outputs(ITEM, PAGE, outcome)
    return outcome, teacher


def reasons(outcome: Outcome) -> list[str]:
    return [entry["reason"] for entry in outcome.rejects]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["売上高は千二百"], "unparseable"),
        ([{"question": "売上高は?", "answer": ""}], "empty_answer"),
        ([{"question": "売上高は?", "answer": "1,500"}], "ungrounded_answer"),  # not on the page
        (
            [{"question": "売上高は?", "answer": "1,200"}, {"evidence": "営業利益 300"}],
            "ungrounded_evidence",
        ),
        (
            [{"question": "売上高は?", "answer": "1,200"}, {"evidence": "売上高は1,200円と推定"}],
            "ungrounded_evidence",
        ),
    ],
)
def test_vqa_rejects(answers, expected):
    outcome, teacher = run_generator(VqaGenerator, *answers)
    assert reasons(outcome) == [expected] and not outcome.records
    assert len(teacher.requests) == len(answers)  # turn 2 is asked only after a valid turn 1


def test_vqa_keeps_a_grounded_answer_with_its_evidence():
    outcome, teacher = run_generator(
        VqaGenerator, {"question": "売上高は?", "answer": "1,200"}, {"evidence": "売上高 1,200"}
    )
    assert not outcome.rejects and len(outcome.records) == 1
    second = teacher.requests[1].messages  # the evidence turn continues the same conversation
    assert [m["role"] for m in second] == ["user", "assistant", "user"]


def test_finqa_rejects_each_bad_pair_and_keeps_the_good_ones():
    pairs = [
        {"type": "extraction", "question": "営業利益は?", "answer": "300"},
        {
            "type": "computation",
            "question": "差は?",
            "operands": ["1,200", "900"],
            "operation": "subtract",
            "answer": "310",
        },
        {
            "type": "computation",
            "question": "和は?",
            "operands": ["1,200", "77"],
            "operation": "add",
            "answer": "1,277",
        },
        {"type": "extraction", "question": "純利益は?", "answer": "250"},
        {
            "type": "computation",
            "question": "比率は?",
            "operands": ["900", "1,200"],
            "operation": "ratio_percent",
            "answer": "75",
        },
        {"type": "extraction", "question": "空", "answer": ""},
    ]
    outcome, _ = run_generator(FinQaGenerator, pairs)
    assert reasons(outcome) == [
        "wrong_computation",
        "ungrounded_answer",
        "ungrounded_answer",
        "empty_answer",
    ]
    assert [r["id"] for r in outcome.records] == ["vqa-x-p0001-q0", "vqa-x-p0001-q4"]
    assert outcome.records[1]["messages"][1]["content"][0]["text"] == "900 ÷ 1,200 × 100 = 75"


def test_ocr_that_disagrees_with_the_text_layer_is_rejected():
    assert ocr_agreement(PAGE.text, PAGE.text) == pytest.approx(1.0)
    outcome, _ = run_generator(OcrGenerator, "令和五年度の予算は一般会計で百十兆円である。")
    assert reasons(outcome) == ["ocr_disagrees"]
    outcome, _ = run_generator(OcrGenerator, "   ")
    assert reasons(outcome) == ["empty_answer"]
    outcome, _ = run_generator(OcrGenerator, PAGE.text.replace("\n", " "))
    assert not outcome.rejects and outcome.records[0]["kind"] == "ocr"


def test_duplicates_are_dropped_across_items_and_counted(tmp_path):
    class Item:
        def __init__(self, id: str) -> None:
            self.id = id

    def work(item: Item) -> Outcome:
        text = "同じ質問" if item.id in {"a", "c"} else item.id
        record = {
            "id": item.id,
            "kind": "text_sft",
            "messages": [],
            "images": [],
            "meta": {"dedup_key": text, "source": "s"},
        }
        return Outcome(records=[record])

    run_sharded(
        tmp_path, [Item(i) for i in "abcd"], work, {"command": "t"}, shard_size=2, concurrency=2
    )
    ids = [
        json.loads(line)["id"]
        for shard in sorted(tmp_path.glob("shard-*.jsonl"))
        for line in shard.read_text().splitlines()
    ]
    assert ids == ["a", "b", "d"]
    assert (
        json.loads((tmp_path / "rejects" / "shard-00001.json").read_text())[0]["reason"]
        == "duplicate"
    )


def test_pages_without_a_text_layer_are_not_checked_for_grounding():
    scan = Page(png=b"png", image_sha256="1" * 64, text="")
    teacher = Scripted({"question": "売上高は?", "answer": "1,500"}, {"evidence": "売上高 1,500"})
    outcome = Outcome()
    VqaGenerator(teacher).outputs(ITEM, scan, outcome)
    assert not outcome.rejects and outcome.records[0]["meta"]["text_layer"] is False
