"""Loaders for the smoke tasks: bundled data beside this file, or another folder given as
`--metadata '{"smoke_data_dir": "DIR"}'` holding the same files."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from PIL import Image

from compass_model.errors import CompassInputError

_BUNDLED = Path(__file__).parent / "data"


def _records(name: str, smoke_data_dir: str | None) -> tuple[Path, list[dict]]:
    folder = Path(smoke_data_dir) if smoke_data_dir else _BUNDLED
    path = folder / name
    if not path.is_file():
        raise CompassInputError(f"{path} is missing: the smoke data folder needs {name}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return folder, [json.loads(line) for line in lines if line.strip()]


def load_text(smoke_data_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    _, records = _records("text.jsonl", smoke_data_dir)
    return {"test": datasets.Dataset.from_list(records)}


def load_images(smoke_data_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    """Checks every image file up front, so a missing one stops the run before any scoring."""
    folder, records = _records("image.jsonl", smoke_data_dir)
    for record in records:
        image = folder / record["image"]
        if not image.is_file():
            raise CompassInputError(
                f"image {image} (document {record['id']}, field 'image') is missing: "
                "restore the file or fix the path in image.jsonl"
            )
        record["image"] = str(image)
    return {"test": datasets.Dataset.from_list(records)}


def doc_to_image(doc: dict) -> list[Image.Image]:
    with Image.open(doc["image"]) as image:
        return [image.convert("RGB")]
