"""Writes the demo recipe's bundled training data (synthetic, self-made, seeded): the image
stages' datasets from self-made PDFs put through the data pipeline (`compass-data pdfs`, then
`synth ocr|vqa|finqa` with a teacher that answers from the PDFs' text layer), and chat records in
the trainer's JSONL schema for the text stages.

The text stages train on the evaluation tasks' own prompts, which this package cannot render (it
does not import compass_eval): they are passed in as `TextTurns`. `python -m compass_cli.demo
--rebuild-data` renders them and calls `build`.
Needs reportlab (the `test` extra) to write the PDFs."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compass_train.demo_data.report_pdfs import Reports, write_corpus
from compass_train.synth.cli import main as compass_data
from compass_train.synth.server import TeacherServer
from compass_train.synth.sources import read_index
from compass_train.synth.text_layer import ExtractiveTeacher

HERE = Path(__file__).parent
SEED = 7

ORIGIN = "https://compass-demo.invalid/reports/"  # reserved TLD: an origin nobody can fetch
SOURCES = [
    {
        "id": "compass-demo",
        "agency": "Compass demo (self-made)",
        "url_prefixes": [ORIGIN],
        "licence": "CC0-1.0 (self-made for the Compass demo)",
    }
]
# file name → title and the table's labels: a total and the two parts it is the sum of.
DOCUMENTS = {
    "city_revenue.pdf": ("コンパス市 一般会計歳入決算", ("歳入合計", "一般財源", "特定財源")),
    "city_expenditure.pdf": (
        "コンパス市 一般会計歳出決算",
        ("歳出合計", "経常的経費", "投資的経費"),
    ),
    "company_income.pdf": ("コンパス商事 損益の概要", ("売上高", "営業費用", "営業利益")),
    "company_balance.pdf": (
        "コンパス商事 貸借対照表の概要",
        ("資産合計", "負債合計", "純資産合計"),
    ),
}
PAGES_PER_DOCUMENT = 4
LONGEST_SIDE = 96  # the tiny model sees 32 px: larger pages would only grow the bundle
# Page datasets: the pipeline's generator → where the dataset is bundled.
PAGE_DATASETS = {"ocr": "p1/ocr", "vqa": "p1/vqa", "finqa": "p3/doc_vqa"}
PDF_DIR = "pdfs"


def reports(rng: random.Random) -> Reports:
    """The PDFs' contents: per page a total in 100–999 (millions of yen) and a part of it in 10–99."""
    contents = {}
    for name, (title, (total, rest, part)) in DOCUMENTS.items():
        tables = []
        for _ in range(PAGES_PER_DOCUMENT):
            whole, piece = rng.randint(100, 999), rng.randint(10, 99)
            tables.append([(total, whole), (rest, whole - piece), (part, piece)])
        contents[name] = (ORIGIN + name, title, tables)
    return contents


def _run(argv: list[str]) -> None:
    if compass_data(argv) != 0:
        raise RuntimeError(f"compass-data {' '.join(argv)} failed (see stderr)")


def build_page_data(root: Path, rng: random.Random) -> None:
    """The PDFs with their manifest and index into <root>/pdfs/, and the page datasets the
    pipeline makes of them into <root>/p1/ocr/, <root>/p1/vqa/ and <root>/p3/doc_vqa/. Every
    output is made afresh in a scratch folder first (the pipeline would resume an existing one)."""
    with tempfile.TemporaryDirectory() as scratch:
        pdf_dir, out = Path(scratch) / PDF_DIR, Path(scratch) / "out"
        write_corpus(pdf_dir, pdf_dir / "sources.yaml", reports(rng), SOURCES)
        # From inside the folder, so the index names the manifest by a path that travels with it.
        with contextlib.chdir(pdf_dir):
            _run(["pdfs", "--manifest", "sources.yaml", "--pdf-dir", "."])
        teacher = ExtractiveTeacher(pdf_dir, read_index(pdf_dir)[0], LONGEST_SIDE)
        with TeacherServer(teacher) as server:
            options = ["--pdf-dir", str(pdf_dir), "--out", str(out), "--teacher", server.url]
            options += ["--longest-side", str(LONGEST_SIDE), "--cache", f"{scratch}/cache.sqlite"]
            for generator in PAGE_DATASETS:
                _run(["synth", generator, *options])
        made = {PDF_DIR: pdf_dir, **{to: out / name for name, to in PAGE_DATASETS.items()}}
        for target, source in made.items():
            shutil.rmtree(root / target, ignore_errors=True)
            shutil.copytree(source, root / target)


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


Turn = tuple[list[dict], str]  # the messages before the answer, and the answer


@dataclass(frozen=True)
class TextTurns:
    """The text stages' chat turns, per task: each a prompt exactly as the task renders it under
    the chat template, answered with the gold answer."""

    harness: dict[str, list[Turn]]  # P1: the bundled JP Fin Harness questions
    arithmetic: dict[str, list[Turn]]  # P2: every one-digit addition, in the XML answer format
    edinet: dict[str, list[Turn]]  # P3: other synthetic companies than the evaluated ones


def build(turns: TextTurns, root: Path = HERE) -> None:
    # The page figures are drawn first from the one seeded stream, so the text records drawn after
    # them (finqa) stay as they were.
    rng = random.Random(SEED)
    build_page_data(root, rng)
    _write(root / "p1" / "harness.jsonl", _records(turns.harness))
    _write(root / "p2" / "cot.jsonl", _records(turns.arithmetic))
    _write(root / "p3" / "edinet.jsonl", _records(turns.edinet))
    _write(root / "p3" / "finqa.jsonl", _finqa(rng))


def _records(turns: dict[str, list[Turn]]) -> list[dict]:
    return [
        _task_record(f"{task}-{i}", "text_sft", messages, answer)
        for task, rows in turns.items()
        for i, (messages, answer) in enumerate(rows)
    ]


def _finqa(rng: random.Random) -> list[dict]:
    records = []
    for i in range(60):
        sales, margin = rng.randint(100, 900), rng.choice((5, 8, 10, 12, 15, 20))
        profit = sales * margin / 100
        question = f"売上高{sales}億円、営業利益{profit:g}億円の会社の営業利益率は?"
        answer = f"営業利益率は{profit:g}÷{sales}={margin}%です。"
        records.append(
            _task_record(f"fin-{i}", "text_sft", [{"role": "user", "content": question}], answer)
        )
    return records


def _task_record(record_id: str, kind: str, messages: list[dict], answer: str) -> dict:
    return {
        "id": record_id,
        "kind": kind,
        "images": [],
        "meta": {"source": "compass demo (synthetic)"},
        "messages": [*messages, {"role": "assistant", "content": answer}],
    }
