"""`inspect`: what a dataset folder holds — counts by kind, rejects by reason, and a few samples of
both — read from the finished shards on disk, so it works on a run that is still going."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from compass_model.errors import CompassInputError
from compass_train.synth.writer import CARD_JSON, REJECTS_DIR, RUN_FILE, summarize


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join("[image] " if part["type"] == "image" else part["text"] for part in content)


def inspect_dataset(path: str | Path, samples: int = 3, seed: int = 0) -> str:
    path = Path(path)
    if samples < 0:
        raise CompassInputError(f"--samples {samples}: give 0 or more samples to show")
    if not (path / RUN_FILE).is_file():
        raise CompassInputError(
            f"{path} is not a dataset folder written by compass-data (no {RUN_FILE})"
        )
    summary = summarize(path)
    settings = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    state = (
        "complete"
        if (path / CARD_JSON).is_file()
        else "incomplete (no dataset card yet: resume the run)"
    )
    lines = [
        f"{path}: {settings.get('command')} by {settings.get('teacher_model')}, "
        f"template {settings.get('template_version')}; {state}",
        f"shards: {summary['shards']}",
        f"records: {summary['total_records']}"
        + "".join(f"\n  {kind}: {count}" for kind, count in sorted(summary["records"].items())),
        f"rejected: {summary['total_rejects']}"
        + "".join(f"\n  {reason}: {count}" for reason, count in summary["rejects"].items()),
        "licences: " + (", ".join(summary["licences"]) or "none recorded"),
    ]
    chooser = random.Random(seed)
    records = [
        json.loads(line)
        for shard in sorted(path.glob("shard-*.jsonl"))
        for line in shard.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    for record in chooser.sample(records, min(samples, len(records))):
        lines.append(f"\nsample {record['id']} ({record['kind']}, images: {record['images']})")
        lines.extend(f"  {m['role']}: {_excerpt(_message_text(m))}" for m in record["messages"])
    rejects = [
        entry
        for file in sorted((path / REJECTS_DIR).glob("shard-*.json"))
        for entry in json.loads(file.read_text(encoding="utf-8"))
    ]
    for entry in chooser.sample(rejects, min(samples, len(rejects))):
        lines.append(
            f"\nrejected {entry['id']}: {entry['reason']} {_excerpt(entry['detail'], 120)}"
        )
        if entry["output"]:
            lines.append(f"  output: {_excerpt(entry['output'])}")
    return "\n".join(lines)
