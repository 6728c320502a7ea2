"""The training-record contract: what the loader accepts, normalises, and refuses (file:line, field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from compass_model.errors import CompassInputError
from compass_train.records import fingerprint, load_records


def _write(folder: Path, records: list[dict], name: str = "part.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def _vqa(record_id: str = "v1") -> dict:
    return {
        "id": record_id,
        "kind": "vqa",
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "売上高は?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "120億円"}]},
            {"role": "user", "content": "根拠は?"},
            {"role": "assistant", "content": "損益計算書の1行目"},
        ],
        "images": ["pages/p1.png"],
        "meta": {"source": "synthetic", "page": 1},
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "pages").mkdir()
    Image.new("RGB", (16, 16), "white").save(tmp_path / "pages" / "p1.png")
    return tmp_path


def test_two_turn_vqa_is_normalised_with_resolved_image(data_dir: Path) -> None:
    _write(data_dir, [_vqa()])
    dataset = load_records(data_dir)
    record = dataset[0]
    assert record["images"] == [str(data_dir / "pages" / "p1.png")]
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"] * 2
    assert record["messages"][2]["content"] == [{"type": "text", "text": "根拠は?"}]
    assert json.loads(record["meta"]) == {"page": 1, "source": "synthetic"}


def test_streaming_yields_the_same_records(data_dir: Path) -> None:
    _write(data_dir, [_vqa("a"), {**_vqa("b"), "kind": "doc_vqa"}])
    assert list(load_records(data_dir, streaming=True)) == list(load_records(data_dir))


def test_fingerprint_changes_with_content(data_dir: Path) -> None:
    path = _write(data_dir, [_vqa("a")])
    before = fingerprint(path)
    _write(data_dir, [_vqa("b")])
    assert before["records"] == 1
    assert fingerprint(path)["sha256"] != before["sha256"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "poem"}, "part.jsonl:2: field 'kind'"),
        ({"images": []}, "part.jsonl:2: field 'images': 0 path(s) for 1 image part(s)"),
        ({"images": ["pages/nope.png"]}, "field 'images[0]': file"),
        ({"messages": [{"role": "user", "content": "q"}]}, "field 'messages': has no assistant"),
        ({"extra": 1}, "field 'extra': unknown field"),
        ({"id": "a"}, "field 'id': 'a' already used at"),
    ],
)
def test_bad_records_name_file_line_and_field(data_dir: Path, change: dict, message: str) -> None:
    _write(data_dir, [_vqa("a"), {**_vqa("b"), **change}])
    with pytest.raises(CompassInputError, match=None) as caught:
        load_records(data_dir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_json_line_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": "x"\n', "utf-8")
    with pytest.raises(CompassInputError, match=r"bad.jsonl:1: not valid JSON"):
        load_records(tmp_path)
    with pytest.raises(CompassInputError, match="does not exist"):
        load_records(tmp_path / "missing")
