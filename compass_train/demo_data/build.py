"""Regenerates the demo recipe's bundled training data (synthetic, self-made, seeded): the image
stages' datasets from self-made PDFs put through the data pipeline (`compass-data pdfs`, then
`synth ocr|vqa|finqa` with a teacher that answers from the PDFs' text layer), and chat records in
the trainer's JSONL schema for the text stages. Run: python -m compass_train.demo_data.build

Needs reportlab (the `test` extra) to write the PDFs."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from compass_eval.data.root import demo_root
from compass_eval.demo_data import build as eval_data
from compass_eval.demo_data.build import PAIRS, arithmetic_cot, arithmetic_problem
from compass_train.demo_data.report_pdfs import Reports, write_corpus
from compass_train.synth.cli import main as compass_data
from compass_train.synth.server import TeacherServer
from compass_train.synth.sources import read_index
from compass_train.synth.text_layer import ExtractiveTeacher

HERE = Path(__file__).parent
SEED = 7
EDINET_TASKS = ("edinet_earnings", "edinet_fraud", "edinet_industry")
REPEATS = 2  # each one-digit addition appears this many times in the P2 data
HARNESS_TASKS = ("chabsa", "cma_basics", "cpa_audit", "fp2", "security_sales_1")

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


def build(root: Path = HERE) -> None:
    # The page figures are drawn first from the one seeded stream, so the text records drawn after
    # them (finqa) stay as they were.
    rng = random.Random(SEED)
    build_page_data(root, rng)

    harness = [
        _task_record(f"harness-{i}", "text_sft", messages, answer)
        for i, (messages, answer) in enumerate(_harness_turns())
    ]
    _write(root / "p1" / "harness.jsonl", harness)

    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch)
        rng_problems = random.Random(17)
        problems = [
            arithmetic_problem(rng_problems, a, b) for a, b in PAIRS for _ in range(REPEATS)
        ]
        eval_data.write_jsonl(data / "gsm8k" / "test.jsonl", problems)
        shutil.copy(demo_root() / "gsm8k" / "train.jsonl", data / "gsm8k" / "train.jsonl")
        prompts = _rendered(data, ["gsm8k_cot_xml"])
    cot = []
    for i, ((messages, _), (a, b)) in enumerate(
        zip(prompts["gsm8k_cot_xml"], [p for p in PAIRS for _ in range(REPEATS)], strict=True)
    ):
        cot.append(_task_record(f"cot-{i}", "text_sft", messages, arithmetic_cot(a, b)))
    _write(root / "p2" / "cot.jsonl", cot)

    write_p3_edinet(root)

    finqa = []
    for i in range(60):
        sales, margin = rng.randint(100, 900), rng.choice((5, 8, 10, 12, 15, 20))
        profit = sales * margin / 100
        finqa.append(
            _task_record(
                f"fin-{i}",
                "text_sft",
                [
                    {
                        "role": "user",
                        "content": f"売上高{sales}億円、営業利益{profit:g}億円の会社の営業利益率は?",
                    }
                ],
                f"営業利益率は{profit:g}÷{sales}={margin}%です。",
            )
        )
    _write(root / "p3" / "finqa.jsonl", finqa)


def write_p3_edinet(root: Path) -> None:
    """P3's EDINET records: other synthetic companies (codes from E95000), each prompted exactly
    as the EDINET tasks prompt (their report budget included), answered with its gold answer."""
    with tempfile.TemporaryDirectory() as scratch:
        eval_data.write_edinet(Path(scratch), n=96, code_base=95000, seed=23, n_industry=96)
        prompts = _rendered(Path(scratch), list(EDINET_TASKS))
    edinet = [
        _task_record(f"{task}-{i}", "text_sft", messages, answer)
        for task in EDINET_TASKS
        for i, (messages, answer) in enumerate(prompts[task])
    ]
    _write(root / "p3" / "edinet.jsonl", edinet)


def _task_record(record_id: str, kind: str, messages: list[dict], answer: str) -> dict:
    return {
        "id": record_id,
        "kind": kind,
        "images": [],
        "meta": {"source": "compass demo (synthetic)"},
        "messages": [*messages, {"role": "assistant", "content": answer}],
    }


def _rendered(data_root: Path, task_names: list[str]) -> dict[str, list[tuple[list[dict], str]]]:
    """Each task's documents as lm-eval renders them under the chat template (the messages before
    the answer) with the gold answer: the demo trains on exactly the context it is evaluated in."""
    os.environ["COMPASS_DATA_DIR"] = str(data_root)
    from lm_eval.tasks import TaskManager, get_task_dict

    def keep_messages(messages: list[dict], add_generation_prompt: bool = True) -> list[dict]:
        return messages

    rendered = {}
    for name, task in get_task_dict(task_names, TaskManager()).items():
        rows = []
        for doc in task.test_docs():
            messages = task.fewshot_context(
                doc, 0, apply_chat_template=True, chat_template=keep_messages
            )
            target = task.doc_to_target(doc)
            if task.OUTPUT_TYPE == "multiple_choice":
                choices = task.doc_to_choice(doc)
                answer = choices[target] if isinstance(target, int) else str(target)
            else:
                answer = str(target)
            rows.append((messages, answer))
        rendered[name] = rows
    return rendered


def _harness_turns() -> list[tuple[list[dict], str]]:
    """The bundled JP Fin Harness questions with their answers: the P1 skill P2 may erode."""
    prompts = _rendered(demo_root(), list(HARNESS_TASKS))
    return [row for task in HARNESS_TASKS for row in prompts[task]]


if __name__ == "__main__":
    build()
