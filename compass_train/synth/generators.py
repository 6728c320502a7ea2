"""The page generators: OCR, two-turn extract-then-evidence VQA, and financial QA. Each asks the
teacher about one rendered page, validates the answers against the page's text layer, and returns
training records with their provenance."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compass_train.synth.pages import Page, load_page, save_image
from compass_train.synth.sources import IndexedPdf
from compass_train.synth.teacher import Teacher, TeacherError, TeacherRequest
from compass_train.synth.templates import PromptTemplate, load_template
from compass_train.synth.validate import (
    Rejected,
    check_computation,
    grounded,
    normalize,
    ocr_agreement,
    parse_json,
    require_text,
)
from compass_train.synth.writer import Outcome


@dataclass(frozen=True)
class PageItem:
    id: str
    pdf: IndexedPdf
    page_index: int

    @property
    def image_path(self) -> str:
        """Relative to the dataset folder; named by content so equal runs write equal files."""
        return f"images/{self.pdf.sha256[:16]}-p{self.page_index + 1:04d}.png"


def page_items(name: str, pdfs: list[IndexedPdf]) -> list[PageItem]:
    return [
        PageItem(f"{name}-{pdf.sha256[:12]}-p{index + 1:04d}", pdf, index)
        for pdf in pdfs
        for index in range(pdf.pages)
    ]


def user(text: str, with_image: bool = False) -> dict[str, Any]:
    parts = [{"type": "image"}] if with_image else []
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def dedup_key(*texts: str) -> str:
    return hashlib.sha256("\x00".join(normalize(text) for text in texts).encode()).hexdigest()


def as_text(value: object) -> object:
    """JSON numbers in a teacher's answer count as their printed form."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class PageGenerator:
    """Subclasses set `name`, `kind` and implement `outputs`."""

    name: str
    kind: str

    def __init__(self, teacher: Teacher, template: PromptTemplate | None = None) -> None:
        self.teacher = teacher
        self.template = template or load_template(self.name)

    def ask(self, messages: list[dict[str, Any]], page: Page) -> str:
        return self.teacher.complete(
            TeacherRequest(messages, [page.png], max_tokens=self.template.max_tokens)
        )

    def record(
        self,
        record_id: str,
        item: PageItem,
        page: Page,
        messages: list[dict[str, Any]],
        key: str,
        **meta: Any,
    ) -> dict[str, Any]:
        return {
            "id": record_id,
            "kind": self.kind,
            "messages": messages,
            "images": [item.image_path],
            "meta": {
                "source_url": item.pdf.url,
                "page": item.page_index + 1,
                "sha256": item.pdf.sha256,
                "image_sha256": page.image_sha256,
                "source": item.pdf.source,
                "agency": item.pdf.agency,
                "licence": item.pdf.licence,
                "teacher_model": self.teacher.model,
                "template_version": self.template.tag,
                "template_sha256": self.template.sha256,
                "text_layer": page.has_text_layer,
                "dedup_key": key,
                **meta,
            },
        }

    def outputs(self, item: PageItem, page: Page, outcome: Outcome) -> None:
        raise NotImplementedError


class OcrGenerator(PageGenerator):
    name = kind = "ocr"
    min_agreement = 0.5

    def outputs(self, item: PageItem, page: Page, outcome: Outcome) -> None:
        text = self.ask([user(self.template.render("request"), with_image=True)], page)
        try:
            transcription = require_text(text, "transcription")
            agreement = ocr_agreement(transcription, page.text) if page.has_text_layer else None
            if agreement is not None and agreement < self.min_agreement:
                raise Rejected("ocr_disagrees", f"bigram F1 {agreement:.2f} with the text layer")
        except Rejected as rejected:
            outcome.reject(item.id, rejected.reason, rejected.detail, text)
            return
        messages = [user(self.template.render("record"), with_image=True), assistant(transcription)]
        outcome.records.append(
            self.record(
                item.id, item, page, messages, dedup_key(transcription), ocr_agreement=agreement
            )
        )


class VqaGenerator(PageGenerator):
    name = kind = "vqa"

    def outputs(self, item: PageItem, page: Page, outcome: Outcome) -> None:
        turn1 = [user(self.template.render("extract"), with_image=True)]
        text = self.ask(turn1, page)
        try:
            extracted = parse_json(text, dict)
            question = require_text(as_text(extracted.get("question")), "question")
            answer = require_text(as_text(extracted.get("answer")), "answer")
            if page.has_text_layer and not grounded(answer, page.text):
                raise Rejected("ungrounded_answer", f"{answer!r} is not in the page text")
            text = self.ask([*turn1, assistant(text), user(self.template.render("evidence"))], page)
            evidence = require_text(as_text(parse_json(text, dict).get("evidence")), "evidence")
            if page.has_text_layer and not (
                grounded(evidence, page.text) and normalize(answer) in normalize(evidence)
            ):
                raise Rejected(
                    "ungrounded_evidence", f"{evidence!r} is not a page span holding the answer"
                )
        except Rejected as rejected:
            outcome.reject(item.id, rejected.reason, rejected.detail, text)
            return
        messages = [
            user(question, with_image=True),
            assistant(answer),
            user(self.template.render("record_followup")),
            assistant(evidence),
        ]
        outcome.records.append(
            self.record(item.id, item, page, messages, dedup_key(question, answer))
        )


_EXPRESSIONS: dict[str, Callable[[list[str]], str]] = {
    "add": lambda ops: " + ".join(ops),
    "subtract": lambda ops: " − ".join(ops),
    "multiply": lambda ops: " × ".join(ops),
    "divide": lambda ops: f"{ops[0]} ÷ {ops[1]}",
    "ratio_percent": lambda ops: f"{ops[0]} ÷ {ops[1]} × 100",
    "growth_percent": lambda ops: f"({ops[1]} − {ops[0]}) ÷ {ops[0]} × 100",
}


class FinQaGenerator(PageGenerator):
    name = "finqa"
    kind = "doc_vqa"
    pairs_per_page = 4

    def _reply(self, pair: dict[str, Any], page: Page) -> tuple[str, str, dict[str, Any]]:
        """(question, assistant reply, meta) of one valid pair; raises Rejected otherwise."""
        question = require_text(as_text(pair.get("question")), "question")
        answer = require_text(as_text(pair.get("answer")), "answer")
        if pair.get("type") == "extraction":
            if page.has_text_layer and not grounded(answer, page.text):
                raise Rejected("ungrounded_answer", f"{answer!r} is not in the page text")
            return question, answer, {"question_type": "extraction"}
        if pair.get("type") != "computation":
            raise Rejected("unparseable", f"unknown question type {pair.get('type')!r}")
        operation = str(pair.get("operation"))
        operands = [str(as_text(operand)) for operand in pair.get("operands") or []]
        missing = [op for op in operands if page.has_text_layer and not grounded(op, page.text)]
        if missing:
            raise Rejected("ungrounded_answer", f"operands {missing} are not in the page text")
        check_computation(operation, operands, answer)
        reply = f"{_EXPRESSIONS[operation](operands)} = {answer}"
        meta = {"question_type": "computation", "operation": operation, "operands": operands}
        return question, reply, meta

    def outputs(self, item: PageItem, page: Page, outcome: Outcome) -> None:
        prompt = self.template.render("request", n=self.pairs_per_page)
        text = self.ask([user(prompt, with_image=True)], page)
        try:
            pairs = parse_json(text, list)
        except Rejected as rejected:
            outcome.reject(item.id, rejected.reason, rejected.detail, text)
            return
        for number, pair in enumerate(pairs):
            pair_id = f"{item.id}-q{number}"
            try:
                if not isinstance(pair, dict):
                    raise Rejected("unparseable", "a pair is not a JSON object")
                question, reply, meta = self._reply(pair, page)
            except Rejected as rejected:
                outcome.reject(pair_id, rejected.reason, rejected.detail, str(pair))
                continue
            messages = [user(question, with_image=True), assistant(reply)]
            outcome.records.append(
                self.record(pair_id, item, page, messages, dedup_key(question, reply), **meta)
            )


GENERATORS: dict[str, type[PageGenerator]] = {
    generator.name: generator for generator in (OcrGenerator, VqaGenerator, FinQaGenerator)
}


def page_work(
    generator: PageGenerator, pdf_dir: Path, out_dir: Path, longest_side: int
) -> Callable[[PageItem], Outcome]:
    """One item's whole job: render, ask, validate; the image is kept only if a record uses it."""

    def work(item: PageItem) -> Outcome:
        page = load_page(pdf_dir / item.pdf.path, item.page_index, longest_side)
        outcome = Outcome()
        try:
            generator.outputs(item, page, outcome)
        except TeacherError as error:
            return outcome.reject(item.id, error.reason, error.detail)
        if outcome.records:
            save_image(page, out_dir / item.image_path)
        return outcome

    return work
