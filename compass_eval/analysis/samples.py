"""Reading lm-eval per-sample logs (`samples_<task>_<date>.jsonl`) into aligned numpy arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compass_eval.analysis.errors import InputError


@dataclass(frozen=True)
class SampleLog:
    """Per-document values of one metric, sorted by `doc_id`.

    `values` is (n,) for per-sample scores (acc, exact_match) and (n, 2) for the pairs that
    corpus-level metrics aggregate: `[label, probability]` for ROC-AUC, `[gold, pred]` for F1/MCC.
    """

    doc_ids: np.ndarray
    doc_hashes: tuple[str | None, ...]
    values: np.ndarray
    choices: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.doc_ids)

    def chance(self) -> float | None:
        """Expected accuracy of a uniform guess over each document's own choices."""
        return None if self.choices is None else float(np.mean(1.0 / self.choices))


def load_sample_log(path: Path, metric: str, filter_name: str) -> SampleLog:
    """Read the entries of one filter; the metric must be present on every entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the sample log ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        # One C-level parse of the whole file is several times faster than one call per line.
        entries = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        entries = [_parse_line(path, number, line) for number, line in enumerate(lines, 1)]
    picked = [
        e for e in entries if isinstance(e, dict) and e.get("filter", filter_name) == filter_name
    ]
    if not picked:
        raise InputError(f"{path}: no entries for filter '{filter_name}'; is it this task's log?")
    try:
        doc_ids = np.array([e["doc_id"] for e in picked], dtype=np.int64)
        raw = [e[metric] for e in picked]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: an entry lacks 'doc_id' or '{metric}' ({exc}); re-run with --log_samples"
        ) from None
    order = np.argsort(doc_ids, kind="stable")
    doc_ids = doc_ids[order]
    if len(doc_ids) > 1 and np.any(doc_ids[1:] == doc_ids[:-1]):
        raise InputError(f"{path}: a doc_id appears twice for filter '{filter_name}'")
    hashes = tuple(picked[i].get("doc_hash") for i in order)
    values = _values(path, metric, raw)[order]
    choices = None
    if all(isinstance(e.get("arguments"), dict | list) for e in picked):
        choices = np.array([max(len(picked[i]["arguments"]), 1) for i in order], dtype=float)
    return SampleLog(doc_ids=doc_ids, doc_hashes=hashes, values=values, choices=choices)


def _parse_line(path: Path, number: int, line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: malformed JSON line ({exc.msg})") from None


def _values(path: Path, metric: str, raw: list) -> np.ndarray:
    if all(isinstance(v, list | tuple) and len(v) == 2 for v in raw):
        try:
            return np.array(raw, dtype=float)
        except (TypeError, ValueError):
            # Class names (strings) as gold/pred: code them jointly so equal names stay equal.
            codes = {name: i for i, name in enumerate(sorted({str(x) for v in raw for x in v}))}
            return np.array([[codes[str(g)], codes[str(p)]] for g, p in raw], dtype=float)
    try:
        values = np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{path}: '{metric}' values are neither numbers nor pairs") from None
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise InputError(f"{path}: '{metric}' has non-finite or nested values")
    return values
