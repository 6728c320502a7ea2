"""Regenerates the demo recipe's bundled training data: small drawn images and chat records in the
trainer's JSONL schema (synthetic, self-made, seeded). Run: python -m compass_train.demo_data.build"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from compass_eval.data.root import demo_root
from compass_eval.demo_data import build as eval_data
from compass_eval.demo_data.build import PAIRS, arithmetic_cot, arithmetic_problem

HERE = Path(__file__).parent
COLOURS = {"赤": (220, 40, 40), "青": (40, 70, 220), "緑": (40, 170, 60), "黄": (230, 200, 30)}
SHAPES = ("円", "四角", "三角")
EDINET_TASKS = ("edinet_earnings", "edinet_fraud", "edinet_industry")
REPEATS = 2  # each one-digit addition appears this many times in the P2 data
HARNESS_TASKS = ("chabsa", "cma_basics", "cpa_audit", "fp2", "security_sales_1")


def _shape_image(colour: str, shape: str, path: Path) -> None:
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    if shape == "円":
        draw.ellipse((12, 12, 52, 52), fill=fill)
    elif shape == "四角":
        draw.rectangle((12, 12, 52, 52), fill=fill)
    else:
        draw.polygon([(32, 8), (56, 56), (8, 56)], fill=fill)
    image.save(path)


def _page_image(lines: list[str], path: Path) -> None:
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(lines):
        draw.text((4, 4 + 14 * row), text, fill="black")
    image.save(path)


def _chat(record_id: str, kind: str, turns: list[tuple[str, str]], images: list[str]) -> dict:
    messages = []
    for i, (question, answer) in enumerate(turns):
        content = [{"type": "text", "text": question}]
        if i == 0:
            content = [{"type": "image"} for _ in images] + content
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return {
        "id": record_id,
        "kind": kind,
        "messages": messages,
        "images": [f"../{image}" for image in images],
        "meta": {"source": "compass demo (synthetic)"},
    }


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def build(root: Path = HERE) -> None:
    rng = random.Random(7)
    images = root / "images"
    images.mkdir(exist_ok=True)
    captions, vqa = [], []
    for colour in COLOURS:
        for shape in SHAPES:
            name = f"images/shape_{len(captions):02d}.png"
            _shape_image(colour, shape, root / name)
            captions.append(
                _chat(
                    f"cap-{len(captions)}",
                    "caption",
                    [("この画像を説明してください。", f"白い背景に{colour}い{shape}があります。")],
                    [name],
                )
            )
            vqa.append(
                _chat(
                    f"vqa-{len(vqa)}",
                    "vqa",
                    [
                        ("図形の色は何ですか。", f"{colour}です。"),
                        ("その根拠を示してください。", f"図形の塗りつぶしが{colour}色だからです。"),
                    ],
                    [name],
                )
            )
    ocr, doc_vqa = [], []
    for i in range(16):
        sales, profit = rng.randint(100, 999), rng.randint(10, 99)
        name = f"images/page_{i:02d}.png"
        _page_image([f"SALES {sales}", f"PROFIT {profit}"], root / name)
        ocr.append(
            _chat(
                f"ocr-{i}",
                "ocr",
                [("このページを書き起こしてください。", f"SALES {sales}\nPROFIT {profit}")],
                [name],
            )
        )
        doc_vqa.append(
            _chat(f"doc-{i}", "doc_vqa", [("売上高はいくらですか。", f"{sales}億円です。")], [name])
        )
    _write(root / "p1" / "caption.jsonl", captions)
    _write(root / "p1" / "ocr.jsonl", ocr)
    _write(root / "p1" / "vqa.jsonl", vqa)
    _write(root / "p3" / "doc_vqa.jsonl", doc_vqa)

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
        eval_data.write_edinet(data, n=96, code_base=95000, seed=23, n_industry=96)
        prompts = _rendered(data, ["gsm8k_cot_xml", *EDINET_TASKS])
    cot = []
    for i, ((messages, _), (a, b)) in enumerate(
        zip(prompts["gsm8k_cot_xml"], [p for p in PAIRS for _ in range(REPEATS)], strict=True)
    ):
        cot.append(_task_record(f"cot-{i}", "text_sft", messages, arithmetic_cot(a, b)))
    _write(root / "p2" / "cot.jsonl", cot)

    edinet = [
        _task_record(f"{task}-{i}", "text_sft", messages, answer)
        for task in EDINET_TASKS
        for i, (messages, answer) in enumerate(prompts[task])
    ]
    _write(root / "p3" / "edinet.jsonl", edinet)

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
