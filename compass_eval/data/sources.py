"""Every benchmark's data source by name: what `custom_dataset` loads and what `status` lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from compass_eval.data import edinet, gsm8k, jp_fin_harness

Records = list[dict[str, Any]]


def _no_policy(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Source:
    """`read(**metadata)` gives the records per split; `split` is the one a task evaluates;
    `policy(metadata)` says how the documents were shaped (recorded in the results)."""

    name: str
    family: str
    files: tuple[Path, ...]
    read: Callable[..., dict[str, Records]]
    split: str = "test"
    policy: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_policy


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
EDINET_BENCH_TASK_NAMES = {
    "earnings_forecast": "edinet_bench_earnings",
    "fraud_detection": "edinet_bench_fraud",
    "industry_prediction": "edinet_bench_industry",
}


def _edinet(task: str) -> Source:
    """Log-likelihood tasks: documents with the report cut to the recorded budget."""
    split = edinet.SPLITS[task]

    def read(sheets=edinet.DEFAULT_SHEETS, **metadata):
        budget = edinet.report_policy(metadata)["max_report_chars"]
        return {split: edinet.load(task, sheets, budget)}

    files = (edinet.relative_file(task),)
    return Source(EDINET_TASK_NAMES[task], edinet.FAMILY, files, read, split, edinet.report_policy)


def _edinet_bench(task: str) -> Source:
    """EDINET-Bench's protocol: the records as the hub serves them, nothing cut."""
    split = edinet.SPLITS[task]
    files = (edinet.relative_file(task),)

    def read(**_):
        return {split: edinet.read_records(task)}

    return Source(EDINET_BENCH_TASK_NAMES[task], edinet.FAMILY, files, read, split)


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
        *(_edinet_bench(task) for task in edinet.TASKS),
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
