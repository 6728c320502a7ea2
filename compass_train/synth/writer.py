"""Sharded, resumable, idempotent output. Work items have a fixed order; shard k holds the records of
items [k·S, (k+1)·S) and is written once (temp + rename) when all of them are done, so a killed run
resumes at the first missing shard, a finished shard is never rewritten, and the request cache
makes redoing the unfinished shard's items free. A dataset card sums up the finished run."""

from __future__ import annotations

import json
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from compass_model import atomic
from compass_model.errors import CompassInputError

RUN_FILE = "run.json"
CARD_JSON = "dataset_card.json"
CARD_MD = "README.md"
REJECTS_DIR = "rejects"


@dataclass
class Outcome:
    """What one work item produced: training records and/or the reasons its outputs were dropped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, item_id: str, reason: str, detail: str = "", output: str = "") -> Outcome:
        self.rejects.append(
            {"id": item_id, "reason": reason, "detail": detail, "output": output[:500]}
        )
        return self


class WorkItem(Protocol):
    id: str


Item = TypeVar("Item", bound=WorkItem)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.jsonl"


def _in_order(
    work: Callable[[Item], Outcome], items: Sequence[Item], concurrency: int
) -> Iterator[Outcome]:
    """Runs `work` on `concurrency` threads, yielding outcomes in item order, a bounded window ahead."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synth") as pool:
        pending: deque[Future[Outcome]] = deque()
        upcoming = iter(items)
        try:
            for item in upcoming:
                pending.append(pool.submit(work, item))
                if len(pending) >= 2 * concurrency:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """A resumed run must be the same run: mixing settings would make shards disagree."""
    path = out_dir / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(
                key
                for key in settings.keys() | previous.keys()
                if settings.get(key) != previous.get(key)
            )
            raise CompassInputError(
                f"{out_dir} holds a run with other settings ({', '.join(changed)}): "
                "use a new --out, or delete it to start over"
            )
    else:
        atomic.write_json(path, settings)


def _read_shard(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def run_sharded(
    out_dir: Path,
    items: Sequence[Item],
    work: Callable[[Item], Outcome],
    settings: dict[str, Any],
    shard_size: int,
    concurrency: int,
) -> None:
    """Processes the items not yet in a finished shard; records whose `meta.dedup_key` was seen
    before (in this run or a finished shard) are dropped as `duplicate`."""
    if shard_size < 1 or concurrency < 1:
        raise CompassInputError("--shard-size and --concurrency must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic.output_lock(out_dir):  # a second run into the same folder stops with one line
        _check_settings(out_dir, settings)
        shards = [items[start : start + shard_size] for start in range(0, len(items), shard_size)]
        seen: set[str] = set()
        todo: list[int] = []
        for index in range(len(shards)):
            path = out_dir / shard_name(index)
            if path.is_file():
                seen.update(record["meta"]["dedup_key"] for record in _read_shard(path))
            else:
                todo.append(index)
        if len(todo) < len(shards):
            print(
                f"resuming: {len(shards) - len(todo)} of {len(shards)} shards already done",
                file=sys.stderr,
            )
        outcomes = _in_order(work, [item for index in todo for item in shards[index]], concurrency)
        for index in todo:
            records, rejects = [], []
            for _ in shards[index]:
                outcome = next(outcomes)
                rejects.extend(outcome.rejects)
                for record in outcome.records:
                    key = record["meta"]["dedup_key"]
                    if key in seen:
                        rejects.append(
                            {"id": record["id"], "reason": "duplicate", "detail": key, "output": ""}
                        )
                    else:
                        seen.add(key)
                        records.append(record)
            atomic.write_json(out_dir / REJECTS_DIR / f"shard-{index:05d}.json", rejects)
            atomic.write_text(
                out_dir / shard_name(index),
                "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records),
            )
            print(
                f"shard {index + 1}/{len(shards)}: {len(records)} records, {len(rejects)} rejected",
                file=sys.stderr,
            )


def summarize(out_dir: Path) -> dict[str, Any]:
    """Counts from what is on disk (finished shards only): the card and `inspect` both use it."""
    records: Counter[str] = Counter()
    sources: dict[str, dict[str, Any]] = {}
    shards = sorted(out_dir.glob("shard-*.jsonl"))
    for path in shards:
        for record in _read_shard(path):
            records[record["kind"]] += 1
            meta = record["meta"]
            entry = sources.setdefault(
                meta["source"],
                {
                    "licence": meta.get("licence"),
                    "agency": meta.get("agency"),
                    "records": 0,
                    "documents": set(),
                },
            )
            entry["records"] += 1
            entry["documents"].add(meta.get("source_url") or meta.get("source"))
    rejects: Counter[str] = Counter()
    for path in sorted((out_dir / REJECTS_DIR).glob("shard-*.json")):
        rejects.update(entry["reason"] for entry in json.loads(path.read_text(encoding="utf-8")))
    return {
        "shards": len(shards),
        "records": dict(records),
        "total_records": sum(records.values()),
        "rejects": dict(sorted(rejects.items())),
        "total_rejects": sum(rejects.values()),
        "sources": {
            name: {**entry, "documents": len(entry["documents"])}
            for name, entry in sorted(sources.items())
        },
        "licences": sorted({entry["licence"] for entry in sources.values() if entry["licence"]}),
    }


def write_card(out_dir: Path, settings: dict[str, Any], title: str) -> dict[str, Any]:
    """`dataset_card.json` for programs, `README.md` for people (Hugging Face card layout)."""
    summary = summarize(out_dir)
    card = {"title": title, "settings": settings, **summary}
    atomic.write_json(out_dir / CARD_JSON, card)
    lines = [
        "---",
        f"license: {', '.join(summary['licences']) or 'unknown'}",
        "language: [ja]",
        "---",
        f"# {title}",
        "",
        f"{summary['total_records']} records in {summary['shards']} JSONL shards "
        f"({', '.join(f'{kind}: {count}' for kind, count in summary['records'].items()) or 'none'}); "
        f"{summary['total_rejects']} teacher outputs rejected.",
        "",
        "## Sources",
        "| source | agency | licence | documents | records |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {entry['agency'] or ''} | {entry['licence'] or ''} | {entry['documents']} | {entry['records']} |"
            for name, entry in summary["sources"].items()
        ),
        "",
        "## Rejected outputs by reason",
        "| reason | count |",
        "|---|---|",
        *(f"| {reason} | {count} |" for reason, count in summary["rejects"].items()),
        "",
        "## Settings",
        "```json",
        json.dumps(settings, ensure_ascii=False, indent=2),
        "```",
        "",
    ]
    atomic.write_text(out_dir / CARD_MD, "\n".join(lines))
    return card
