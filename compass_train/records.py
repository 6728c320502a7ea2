"""The on-disk training record (chat JSONL) and its loader: validated once, read by every stage.

One record per line: `id`, `kind`, `messages` (user/assistant turns whose `content` is a string
or a list of `{"type": "image"}` / `{"type": "text", "text": ...}` parts), `images` (paths
inside the JSONL file's folder, one per image part, in order) and free `meta`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, IterableDataset, List, Value

from compass_model.errors import CompassInputError

KINDS = ("caption", "ocr", "vqa", "text_sft", "doc_vqa")
ROLES = ("system", "user", "assistant")

# Content is normalised to a list of parts, and `meta` kept as a JSON string, so every record has
# one Arrow schema whatever its provenance fields.
FEATURES = Features(
    {
        "id": Value("string"),
        "kind": Value("string"),
        "messages": List(
            {
                "role": Value("string"),
                "content": List({"type": Value("string"), "text": Value("string")}),
            }
        ),
        "images": List(Value("string")),
        "meta": Value("string"),
    }
)


def jsonl_files(path: str | Path) -> list[Path]:
    """A JSONL file, or every `*.jsonl` under a folder (sorted, so the order is stable)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.rglob("*.jsonl"))
        if files:
            return files
        raise CompassInputError(f"training data {path}: folder holds no *.jsonl file")
    raise CompassInputError(f"training data {path} does not exist")


def validate_record(raw: Any, where: str, base_dir: Path) -> dict[str, Any]:
    """One parsed line → the normalised record; `where` is `file:line` for the error message."""

    def bad(field: str, problem: str) -> CompassInputError:
        return CompassInputError(f"{where}: field {field!r}: {problem}")

    if not isinstance(raw, dict):
        raise CompassInputError(f"{where}: a record must be a JSON object")
    unknown = sorted(set(raw) - {"id", "kind", "messages", "images", "meta"})
    if unknown:
        raise bad(unknown[0], "unknown field (known: id, kind, messages, images, meta)")
    record_id = raw.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise bad("id", "must be a non-empty string")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise bad("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    images = raw.get("images", [])
    if not isinstance(images, list) or not all(isinstance(p, str) and p for p in images):
        raise bad("images", "must be a list of path strings")
    meta = raw.get("meta", {})
    if not isinstance(meta, dict):
        raise bad("meta", "must be an object")

    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "must be a non-empty list")
    normalised = [_message(m, f"messages[{i}]", bad) for i, m in enumerate(messages)]
    if normalised[0]["role"] == "assistant":
        raise bad("messages", "must open with a user (or system) turn")
    if not any(m["role"] == "assistant" for m in normalised):
        raise bad("messages", "has no assistant turn, so nothing to learn from")
    image_parts = sum(p["type"] == "image" for m in normalised for p in m["content"])
    if image_parts != len(images):
        raise bad("images", f"{len(images)} path(s) for {image_parts} image part(s) in messages")

    resolved = []
    for i, image in enumerate(images):
        image_path = base_dir / image
        if Path(image).is_absolute() or not image_path.resolve().is_relative_to(base_dir.resolve()):
            raise bad(
                f"images[{i}]",
                f"{image} is outside the JSONL file's folder {base_dir}; give a path inside it "
                "(no absolute paths, '..' or links leading out)",
            )
        if not image_path.is_file():
            raise bad(f"images[{i}]", f"file {image_path} does not exist")
        resolved.append(str(image_path))
    return {
        "id": record_id,
        "kind": kind,
        "messages": normalised,
        "images": resolved,
        "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True),
    }


def _message(message: Any, field: str, bad: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise bad(field, f"must be an object with a role in {', '.join(ROLES)}")
    content = message.get("content")
    if isinstance(content, str):
        return {"role": message["role"], "content": [{"type": "text", "text": content}]}
    if not isinstance(content, list):
        raise bad(f"{field}.content", "must be a string or a list of parts")
    parts = []
    for j, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "image":
            if message["role"] != "user":
                raise bad(f"{field}.content[{j}]", "images belong in user turns")
            parts.append({"type": "image", "text": None})
        elif isinstance(part, dict) and part.get("type") == "text":
            if not isinstance(part.get("text"), str):
                raise bad(f"{field}.content[{j}].text", "must be a string")
            parts.append({"type": "text", "text": part["text"]})
        else:
            raise bad(f"{field}.content[{j}]", 'must be {"type": "image"} or a text part')
    return {"role": message["role"], "content": parts}


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Validated records of every file, in order; the first bad line stops everything."""
    seen: dict[str, str] = {}
    for file in jsonl_files(path):
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{file}:{number}"
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CompassInputError(f"{where}: not valid JSON ({error.msg})") from None
                record = validate_record(raw, where, file.parent)
                if record["id"] in seen:
                    raise CompassInputError(
                        f"{where}: field 'id': {record['id']!r} already used at {seen[record['id']]}"
                    )
                seen[record["id"]] = where
                yield record


def load_records(path: str | Path, streaming: bool = False) -> Dataset | IterableDataset:
    """A `datasets` view of the records under `path`; streaming reads lazily, for large sets."""
    if streaming:
        files = [str(f) for f in jsonl_files(path)]
        return IterableDataset.from_generator(
            _records_of, gen_kwargs={"files": files}, features=FEATURES
        )
    return Dataset.from_list(list(iter_records(path)), features=FEATURES)


def _records_of(files: list[str]) -> Iterator[dict[str, Any]]:
    # `datasets` shards generators over list arguments, so each worker reads whole files.
    for file in files:
        yield from iter_records(file)


def fingerprint(path: str | Path) -> dict[str, Any]:
    """What a manifest records about a training set: its files, record count and content hash."""
    digest = hashlib.sha256()
    count = 0
    files = jsonl_files(path)
    for file in files:
        data = file.read_bytes()
        digest.update(file.name.encode() + b"\0" + data)
        count += sum(1 for line in data.splitlines() if line.strip())
    return {"path": str(path), "files": len(files), "records": count, "sha256": digest.hexdigest()}
