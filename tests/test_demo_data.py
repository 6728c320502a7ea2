"""The demo's image data is what the data pipeline makes of the self-made PDFs: the builder, run
again into a temporary folder, writes the bundled PDFs, index and datasets (byte for byte but
for the font-dependent page images); every
record names the text-layer teacher and the self-made `.invalid` source; the demo recipe's data
entries resolve to the bundled datasets and the trainer's loader reads them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from clitools import REPO

from compass_train.demo_data.build import (
    HERE,
    PAGE_DATASETS,
    PDF_DIR,
    SEED,
    SOURCES,
    build_page_data,
)
from compass_train.recipe import load_recipe
from compass_train.records import load_records
from compass_train.synth.text_layer import ExtractiveTeacher

BUNDLED = [PDF_DIR, *PAGE_DATASETS.values()]
PAGES = 16  # 4 PDFs × 4 pages
COUNTS = {"p1/ocr": ("ocr", PAGES), "p1/vqa": ("vqa", PAGES), "p3/doc_vqa": ("doc_vqa", 3 * PAGES)}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_data")
    build_page_data(root, random.Random(SEED))
    return root


def files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def shard_records(dataset: Path) -> list[dict]:
    return [
        json.loads(line)
        for shard in sorted(dataset.glob("shard-*.jsonl"))
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]


def without_image_hashes(records: list[dict]) -> list[dict]:
    return [
        {**r, "meta": {k: v for k, v in r["meta"].items() if k != "image_sha256"}} for r in records
    ]


def font_dependent(name: str) -> bool:
    """Page images (and the hashes of them that shards carry) depend on the system fonts pdfium
    finds to stand in for the PDFs' non-embedded CID font: another machine may draw them apart."""
    return name.endswith(".png") or name.startswith("shard-")


@pytest.mark.parametrize("folder", BUNDLED)
def test_bundled_files_are_what_the_builder_makes(rebuilt, folder):
    made, bundled = files(rebuilt / folder), files(HERE / folder)
    assert sorted(made) == sorted(bundled)
    if folder != PDF_DIR:
        assert without_image_hashes(shard_records(rebuilt / folder)) == without_image_hashes(
            shard_records(HERE / folder)
        )
    differ = [n for n in made if not font_dependent(n) and made[n] != bundled[n]]
    assert not differ, f"stale: rerun `python -m compass_cli.demo --rebuild-data` ({differ[:5]})"


@pytest.mark.parametrize("folder", PAGE_DATASETS.values())
def test_every_record_comes_from_the_self_made_pdfs_through_the_teacher(folder):
    kind, count = COUNTS[folder]
    records = shard_records(HERE / folder)
    assert len(records) == count and {r["kind"] for r in records} == {kind}
    card = json.loads((HERE / folder / "dataset_card.json").read_text(encoding="utf-8"))
    assert card["total_records"] == count and card["total_rejects"] == 0
    pdfs = {pdf["sha256"]: pdf for pdf in card["settings"]["pdfs"]}
    for record in records:
        meta = record["meta"]
        assert meta["teacher_model"] == ExtractiveTeacher.model
        assert urlsplit(meta["source_url"]).hostname.endswith(".invalid")
        assert meta["source"] == SOURCES[0]["id"] and meta["licence"] == SOURCES[0]["licence"]
        assert meta["agency"] == "Compass demo (self-made)" and meta["text_layer"]
        assert pdfs[meta["sha256"]]["url"] == meta["source_url"]
        assert (HERE / PDF_DIR / pdfs[meta["sha256"]]["path"]).is_file()


def test_the_demo_recipe_trains_its_image_stages_on_the_bundled_datasets():
    recipe = load_recipe(REPO / "recipes" / "demo.yaml")
    stages = {(p.name, s.name): s for p in recipe.phases for s in p.stages}
    expected = {
        ("p1", "s1"): ["p1/ocr"],
        ("p1", "s2"): ["p1/vqa", "p1/harness.jsonl"],
        ("p3", "s2"): ["p3/doc_vqa"],
    }
    for key, folders in expected.items():
        paths = [recipe.data_path(entry) for entry in stages[key].data]
        assert [p.resolve() for p in paths] == [(HERE / f).resolve() for f in folders]
        for path in paths:
            dataset = load_records(path)  # validates every record and that its images exist
            assert len(dataset) > 0
            assert all(Path(image).is_file() for row in dataset for image in row["images"])
