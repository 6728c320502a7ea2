"""Regenerates the demo recipe's bundled training data: small drawn images and chat records in the
trainer's JSONL schema (synthetic, self-made, seeded). Run: python -m compass_train.demo_data.build"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
COLOURS = {"赤": (220, 40, 40), "青": (40, 70, 220), "緑": (40, 170, 60), "黄": (230, 200, 30)}
SHAPES = ("円", "四角", "三角")


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

    cot = []
    for i in range(120):
        a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 9)
        problem = f"りんごが{a}個、みかんが{b}個あります。合計を{c}倍すると何個ですか。"
        thinking = f"合計は{a}+{b}={a + b}個。{c}倍すると{a + b}×{c}={(a + b) * c}個。"
        answer = (
            f"<Problem>{problem}</Problem><Thinking>{thinking}</Thinking>"
            f"<Answer>\\boxed{{{(a + b) * c}}}</Answer>"
        )
        cot.append(
            {
                "id": f"cot-{i}",
                "kind": "text_sft",
                "images": [],
                "meta": {"source": "compass demo arithmetic (synthetic)"},
                "messages": [
                    {"role": "user", "content": problem},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
    _write(root / "p2" / "cot.jsonl", cot)

    finqa = []
    for i in range(60):
        sales, margin = rng.randint(100, 900), rng.choice((5, 8, 10, 12, 15, 20))
        profit = sales * margin / 100
        finqa.append(
            {
                "id": f"fin-{i}",
                "kind": "text_sft",
                "images": [],
                "meta": {"source": "compass demo financial QA (synthetic)"},
                "messages": [
                    {
                        "role": "user",
                        "content": f"売上高{sales}億円、営業利益{profit:g}億円の会社の営業利益率は?",
                    },
                    {
                        "role": "assistant",
                        "content": f"営業利益率は{profit:g}÷{sales}={margin}%です。",
                    },
                ],
            }
        )
    _write(root / "p3" / "finqa.jsonl", finqa)


if __name__ == "__main__":
    build()
