"""Published scores of external models (`reports/baselines.yaml`), each with its source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from compass_eval.paths import reports_dir
from compass_model.typed import load


@dataclass(frozen=True)
class Baseline:
    """One published figure, in lm-eval's scale (fractions; ROC-AUC as is)."""

    benchmark: str
    model: str
    metric: str
    score: float
    source: str
    setting: str = ""


@dataclass(frozen=True)
class Baselines:
    """The file: one top-level `baselines` list."""

    baselines: list[Baseline]


def load_baselines(path: Path | None = None) -> list[dict]:
    """The shipped baselines as plain dicts, ready to be copied into report.json."""
    path = path or reports_dir() / "baselines.yaml"
    return [dataclasses.asdict(entry) for entry in load(Baselines, path, "baselines").baselines]
