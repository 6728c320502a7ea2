"""Every benchmark's data source by name: what `custom_dataset` loads and what `status` lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from compass_eval.data import edinet, gsm8k, jp_fin_harness

Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Source:
    name: str
    family: str
    files: tuple[Path, ...]
    read: Callable[..., dict[str, Records]]


def _harness(name: str) -> Source:
    loader = jp_fin_harness.LOADERS[name]
    return Source(
        name,
        jp_fin_harness.FAMILY,
        tuple(jp_fin_harness.files_of(name)),
        lambda **_: {"test": loader()},
    )


EDINET_TASK_NAMES = {
    "earnings_forecast": "edinet_earnings",
    "fraud_detection": "edinet_fraud",
    "industry_prediction": "edinet_industry",
}


def _edinet(task: str) -> Source:
    def read(sheets=edinet.DEFAULT_SHEETS, max_report_chars=edinet.DEFAULT_MAX_REPORT_CHARS, **_):
        return {"test": edinet.load(task, sheets, max_report_chars)}

    return Source(EDINET_TASK_NAMES[task], edinet.FAMILY, (edinet.relative_file(task),), read)


def _gsm8k() -> Source:
    files = tuple(Path(gsm8k.relative_file(split)) for split in gsm8k.SPLITS)
    return Source(
        "gsm8k",
        gsm8k.FAMILY,
        files,
        lambda **_: {split: gsm8k.load(split) for split in gsm8k.SPLITS},
    )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        *(_edinet(task) for task in edinet.TASKS),
        *(_harness(name) for name in jp_fin_harness.LOADERS),
        _gsm8k(),
    )
}
FAMILIES = sorted({source.family for source in SOURCES.values()})


def read_source(source: str, **options: Any) -> dict[str, Records]:
    """Records per split; `options` are the task's metadata (EDINET reads sheets, budget)."""
    return SOURCES[source].read(**options)


def load_dataset(source: str, **metadata: Any) -> datasets.DatasetDict:
    """`custom_dataset` entry point: lm-eval passes the task's metadata and dataset_kwargs."""
    splits = read_source(source, **metadata)
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list(records) for split, records in splits.items()}
    )
