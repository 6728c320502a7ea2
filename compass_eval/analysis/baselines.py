"""Published scores of external models (`reports/baselines.yaml`), each with its source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from compass_eval.analysis.config import from_mapping
from compass_eval.paths import reports_dir
from compass_model.errors import CompassInputError


@dataclass(frozen=True)
class Baseline:
    """One published figure, in lm-eval's scale (fractions; ROC-AUC as is)."""

    benchmark: str
    model: str
    metric: str
    score: float
    source: str
    setting: str = ""


def load_baselines(path: Path | None = None) -> list[dict]:
    """The shipped baselines as plain dicts, ready to be copied into report.json."""
    path = path or reports_dir() / "baselines.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CompassInputError(f"{path}: cannot read the baselines ({exc})") from None
    entries = data.get("baselines", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CompassInputError(f"{path}: expected a top-level 'baselines' list")
    return [
        dataclasses.asdict(from_mapping(Baseline, entry, f"{path}: baselines[{i}]"))
        for i, entry in enumerate(entries)
    ]
