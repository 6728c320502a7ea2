"""Typed loading of lm-eval results JSONs: the boundary between evaluation output and analysis."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from compass_model.errors import CompassInputError

_RESULTS_NAME = re.compile(r"^results_(?P<date_id>.+)\.json$")
_DATE_ID = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d.\-]+$")


@dataclass(frozen=True)
class TaskResult:
    """One task's aggregate metrics and the settings that decide whether phases are comparable."""

    name: str
    metrics: dict[str, object]
    source: Path
    date: float = 0.0
    version: str | None = None
    n_shot: str | None = None
    limit: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    aggregations: dict[str, str] = field(default_factory=dict)
    output_type: str | None = None
    n_choices: int | None = None
    n_samples: int | None = None
    samples: Path | None = None

    def metric(self, name: str, preferred_filter: str | None = None) -> tuple[str, float]:
        """The `name,<filter>` key and its value, so the report can say which filter it used."""
        keys = sorted(k for k in self.metrics if k.split(",")[0] == name and "," in k)
        if not keys:
            raise CompassInputError(
                f"{self.source}: task '{self.name}' has no '{name}' metric "
                f"(found: {', '.join(sorted(self.metrics)) or 'none'}); "
                f"evaluate it with a task version that reports '{name}'"
            )
        for wanted in (preferred_filter, "none"):
            if wanted and f"{name},{wanted}" in keys:
                key = f"{name},{wanted}"
                break
        else:
            key = keys[0]
        value = self.metrics[key]
        # NaN is a metric's way of saying "undefined here" (ROC-AUC of one class): the report
        # shows it as such; anything else that is not a finite number is a broken file.
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isinf(value):
            raise CompassInputError(
                f"{self.source}: task '{self.name}' metric '{key}' is {value!r}, not a finite "
                "number; re-run the evaluation for this task"
            )
        return key, float(value)


@dataclass(frozen=True)
class PhaseResults:
    """All tasks of one phase, merged from every results JSON found for it."""

    name: str
    source: Path
    tasks: dict[str, TaskResult]


def parse_phase_specs(specs: list[str], results_root: Path | None) -> list[tuple[str, Path]]:
    """Turn `p0` (the folder `<results>/p0`) and `p0=path` into (name, path) pairs."""
    pairs: list[tuple[str, Path]] = []
    for spec in specs:
        name, sep, raw = spec.partition("=")
        if not name:
            raise CompassInputError(
                f"--phases: '{spec}' has no phase name; write NAME or NAME=PATH"
            )
        if sep:
            path = Path(raw)
        elif results_root is None:
            raise CompassInputError(
                f"--phases: '{spec}' names no path; give --results DIR or {spec}=PATH"
            )
        else:
            path = results_root / name
        if any(name == seen for seen, _ in pairs):
            raise CompassInputError(
                f"--phases: phase name '{name}' is given twice; names must be unique"
            )
        if not path.exists():
            raise CompassInputError(f"phase '{name}': no such file or folder: {path}")
        pairs.append((name, path))
    return pairs


def load_phase(name: str, path: Path) -> PhaseResults:
    """Read a results file, or every results JSON under a folder; the newest run of a task wins."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json") if p.is_file())
    tasks: dict[str, TaskResult] = {}
    for file in files:
        for task in _read_results_file(file, explicit=path.is_file()):
            held = tasks.get(task.name)
            if held is None or task.date >= held.date:
                tasks[task.name] = task
    if not tasks:
        raise CompassInputError(
            f"phase '{name}': no lm-eval results JSON (a .json with a top-level 'results' object) "
            f"under {path}; run lm_eval with --output_path there"
        )
    return PhaseResults(name=name, source=path, tasks=tasks)


def _read_results_file(path: Path, explicit: bool) -> list[TaskResult]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompassInputError(
            f"{path}: not readable as JSON ({exc}); fix or remove the file"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        if explicit:
            raise CompassInputError(
                f"{path}: no top-level 'results' object; is it an lm-eval results JSON?"
            )
        return []
    date = data.get("date")
    date = float(date) if isinstance(date, int | float) and not isinstance(date, bool) else 0.0
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    n_shot = data.get("n-shot") if isinstance(data.get("n-shot"), dict) else {}
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    # "limit": null is a setting (the whole split); only an absent key is unknown.
    limit = str(config["limit"]) if "limit" in config else None
    tasks = []
    for name, metrics in data["results"].items():
        if not isinstance(metrics, dict):
            raise CompassInputError(f"{path}: results['{name}'] is not an object of metrics")
        task_config = configs.get(name) if isinstance(configs.get(name), dict) else {}
        tasks.append(
            TaskResult(
                name=name,
                metrics=metrics,
                source=path,
                date=date,
                version=_text(versions.get(name)),
                n_shot=_text(n_shot.get(name)),
                limit=limit,
                metadata=_dict(task_config.get("metadata")),
                aggregations=_aggregations(task_config),
                output_type=_text(task_config.get("output_type")),
                n_choices=_n_choices(task_config),
                n_samples=_effective(n_samples.get(name)),
                samples=_samples_path(path, name),
            )
        )
    return tasks


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _dict(value: object) -> dict[str, object]:
    return dict(value) if isinstance(value, dict) else {}


def _aggregations(task_config: dict) -> dict[str, str]:
    found = {}
    for entry in task_config.get("metric_list") or []:
        if isinstance(entry, dict) and "metric" in entry:
            found[str(entry["metric"])] = str(entry.get("aggregation", ""))
    return found


def _effective(counts: object) -> int | None:
    """lm-eval's `n-samples[task]["effective"]`: documents scored after --limit."""
    value = counts.get("effective") if isinstance(counts, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _n_choices(task_config: dict) -> int | None:
    choices = task_config.get("doc_to_choice")
    return len(choices) if isinstance(choices, list) and choices else None


def _samples_path(results_file: Path, task: str) -> Path | None:
    # lm-eval writes results_<date_id>.json beside samples_<task>_<date_id>.jsonl.
    match = _RESULTS_NAME.match(results_file.name)
    if match:
        exact = results_file.with_name(f"samples_{task}_{match['date_id']}.jsonl")
        return exact if exact.is_file() else None
    prefix = f"samples_{task}_"
    candidates = sorted(
        p
        for p in results_file.parent.glob(f"{prefix}*.jsonl")
        if _DATE_ID.match(p.name[len(prefix) : -len(".jsonl")])
    )
    return candidates[-1] if candidates else None
