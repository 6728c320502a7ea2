"""A teacher that answers from the PDF's text layer: for self-made PDFs, whose text layer is ground
truth (the demo's data and the tests), it stands in for a VLM behind `synth ocr|vqa|finqa`."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

from compass_train.synth.generators import FinQaGenerator
from compass_train.synth.pages import load_page
from compass_train.synth.sources import IndexedPdf
from compass_train.synth.teacher import TeacherRequest
from compass_train.synth.templates import load_template


def first_text(request: TeacherRequest) -> str:
    """The text of the request's first message (the generator's prompt)."""
    return next(part["text"] for part in request.messages[0]["content"] if part["type"] == "text")


class ExtractiveTeacher:
    """Answers from the page's own text layer: finds the page by its rendered image's hash (it
    renders every indexed page itself, at the generators' `longest_side`), then transcribes, or
    picks table rows and computes."""

    model = "extractive-teacher"

    def __init__(self, pdf_dir: Path, pdfs: list[IndexedPdf], longest_side: int = 384) -> None:
        self.pages: dict[str, str] = {}
        for pdf in pdfs:
            for index in range(pdf.pages):
                page = load_page(pdf_dir / pdf.path, index, longest_side)
                known = self.pages.setdefault(page.image_sha256, page.text)
                if known != page.text:
                    # Small renders can lose the very glyphs that tell two pages apart.
                    raise ValueError(
                        f"{pdf.path} page {index + 1} renders at {longest_side} px to the same "
                        "image as another page with other text: the teacher cannot tell them apart"
                    )
        # The generators' own prompts, rendered as they send them, tell the teacher its task.
        self.tasks = {
            load_template("ocr").render("request"): "ocr",
            load_template("vqa").render("extract"): "vqa",
            load_template("finqa").render("request", n=FinQaGenerator.pairs_per_page): "finqa",
        }

    def _rows(self, text: str) -> list[tuple[str, str]]:
        return re.findall(r"^(\S+) ([\d,]+)$", text, re.MULTILINE)

    def complete(self, request: TeacherRequest) -> str:
        text = self.pages[hashlib.sha256(request.images[0]).hexdigest()]
        task = self.tasks[first_text(request)]
        rows = self._rows(text)
        if task == "ocr":
            return text
        if task == "vqa":
            if len(request.messages) == 1:
                label, value = rows[0]
                return json.dumps(
                    {"question": f"表の「{label}」の金額はいくらですか。", "answer": value},
                    ensure_ascii=False,
                )
            answer = json.loads(request.messages[1]["content"][0]["text"])["answer"]
            return json.dumps(
                {"evidence": next(line for line in text.splitlines() if answer in line)},
                ensure_ascii=False,
            )
        (label_a, a), (label_b, b) = rows[0], rows[1]
        first, second = Decimal(a.replace(",", "")), Decimal(b.replace(",", ""))
        title = text.splitlines()[0]
        pairs = [
            {"type": "extraction", "question": "このページの表題は何ですか。", "answer": title},
            {
                "type": "computation",
                "question": f"{label_a}と{label_b}の差はいくらですか。",
                "operands": [a, b],
                "operation": "subtract",
                "answer": f"{first - second:,}",
            },
            {
                "type": "computation",
                "question": f"{label_b}は{label_a}の何%ですか。",
                "operands": [b, a],
                "operation": "ratio_percent",
                "answer": f"{second / first * 100:.1f}",
            },
        ]
        return json.dumps(pairs, ensure_ascii=False)
