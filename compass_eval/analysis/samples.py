"""Reading lm-eval per-sample logs (`samples_<task>_<date>.jsonl`) into aligned numpy arrays."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compass_model.errors import CompassInputError

# lm-eval writes each entry with json.dumps' default separators, `doc_id` first and, after the
# bulky doc/arguments/resps, `filter`, `metrics`, the hashes and then the per-sample metrics.
# Inside a JSON string every quote is escaped, so these patterns can only match real keys.
_FIRST_DOC_ID = re.compile(rb'\{"doc_id": (-?\d+), ')
_FAST_DOC_ID = re.compile(rb'\n\{"doc_id": (-?\d+), ')
_FAST_TAIL = re.compile(
    rb', "filter": "([^"\\\n]*)", "metrics": \[[^\]\n]*\], "doc_hash": "([^"\\\n]*)"'
    rb'(?:, "prompt_hash": "[^"\\\n]*")?(?:, "target_hash": "[^"\\\n]*")?(?:, ([^\n]*))?\}\n'
)
_CHOICE_KEY = b'"gen_args_'


@dataclass(frozen=True)
class SampleLog:
    """Per-document values of one metric, sorted by `doc_id`.

    `values` is (n,) for per-sample scores (acc, exact_match) and (n, 2) for the pairs that
    corpus-level metrics aggregate: `[label, probability]` for ROC-AUC, `[gold, pred]` for F1/MCC.
    `doc_hashes` (bytes) holds b"" where the log has no hash. `clusters` holds each document's
    cluster key (bytes) when the task declares one. `undefined` counts entries left out because
    their pair has no value (a reply with no usable answer, which the aggregation drops too).
    """

    doc_ids: np.ndarray
    doc_hashes: np.ndarray
    values: np.ndarray
    choices: np.ndarray | None = None
    clusters: np.ndarray | None = None
    undefined: int = 0

    def __len__(self) -> int:
        return len(self.doc_ids)

    def chance(self) -> float | None:
        """Expected accuracy of a uniform guess over each document's own choices."""
        return None if self.choices is None else float(np.mean(1.0 / self.choices))


@dataclass(frozen=True)
class _Entries:
    """Columns of a log, one item per line; filters and hashes as bytes for vectorised compares."""

    doc_ids: np.ndarray
    filters: np.ndarray
    hashes: np.ndarray
    values: list
    choices: list[int] | None


def load_sample_log(
    path: Path, metric: str, filter_name: str, count_choices: bool, cluster_key: str | None = None
) -> SampleLog:
    """Read the entries of one filter; the metric must be present on every entry.

    `count_choices` records each document's number of answer choices (the request count), for
    a chance level when the task config does not list its choices. `cluster_key` names the
    document field whose equal values make a cluster (e.g. `edinet_code`: one company).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CompassInputError(f"{path}: cannot read the sample log ({exc})") from None
    entries = _fast_entries(raw, metric, count_choices) or _full_entries(
        path, raw, metric, count_choices
    )
    keep = np.flatnonzero(entries.filters == filter_name.encode())
    if not len(keep):
        raise CompassInputError(
            f"{path}: no entries for filter '{filter_name}'; is it this task's log?"
        )
    order = np.argsort(entries.doc_ids[keep], kind="stable")
    sorted_ids = entries.doc_ids[keep][order]
    if len(sorted_ids) > 1 and np.any(sorted_ids[1:] == sorted_ids[:-1]):
        raise CompassInputError(f"{path}: a doc_id appears twice for filter '{filter_name}'")
    values, defined = _values(path, metric, [entries.values[i] for i in keep])
    order = order[defined[order]]
    choices = None
    if entries.choices is not None:
        choices = np.maximum(np.array(entries.choices, dtype=float)[keep][order], 1.0)
    clusters = None
    if cluster_key is not None:
        clusters = _cluster_keys(path, raw, cluster_key)[keep][order]
    return SampleLog(
        doc_ids=entries.doc_ids[keep][order],
        doc_hashes=entries.hashes[keep][order],
        values=values[order],
        choices=choices,
        clusters=clusters,
        undefined=int((~defined).sum()),
    )


def _cluster_keys(path: Path, raw: bytes, key: str) -> np.ndarray:
    """Each line's first `"key": value` (the document's own field: `doc` follows `doc_id`)."""
    pattern = re.compile(rb'"' + re.escape(key.encode()) + rb'": ("(?:[^"\\\n]|\\.)*"|-?\d+)')
    found = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        match = pattern.search(line)
        if match is None:
            raise CompassInputError(
                f"{path}:{number}: the task declares cluster_key '{key}' but this document has no "
                "such field; fix the task metadata or the data"
            )
        found.append(match[1])
    return np.array(found)


def _fast_entries(raw: bytes, metric: str, count_choices: bool) -> _Entries | None:
    """Only the small head and tail of each line are decoded; None when the layout differs."""
    if not raw.endswith(b"\n"):
        return None
    lines = raw.count(b"\n")  # a line the patterns miss (blank, other layout) breaks the counts
    # The first line has no newline before it; a literal-prefixed pattern finds all the others.
    first = _FIRST_DOC_ID.match(raw)
    ids = ([first[1]] if first else []) + _FAST_DOC_ID.findall(raw)
    tails = _FAST_TAIL.findall(raw)
    if not len(ids) == len(tails) == lines:
        return None
    filters, hashes, extras = zip(*tails, strict=True)
    # Each line's metrics are numbers or short lists: cut out this metric's value on every line
    # and parse them all as one JSON array.
    key = re.compile(
        rb'(?:^|, )"' + re.escape(metric.encode()) + rb'": (\[[^\]\n]*\]|[^,\n]*)', re.M
    )
    found = key.findall(b"\n".join(extras))
    if len(found) != len(extras):
        return None
    try:
        values = json.loads(b"[" + b",".join(found) + b"]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    choices = [line.count(_CHOICE_KEY) for line in raw.split(b"\n")[:-1]] if count_choices else None
    return _Entries(
        doc_ids=np.array(list(map(int, ids)), dtype=np.int64),
        filters=np.array(filters),
        hashes=np.array(hashes),
        values=values,
        choices=choices,
    )


def _full_entries(path: Path, raw: bytes, metric: str, count_choices: bool) -> _Entries:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CompassInputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CompassInputError(f"{path}:{number}: malformed JSON line ({exc.msg})") from None
        if not isinstance(entry, dict) or "doc_id" not in entry or metric not in entry:
            raise CompassInputError(
                f"{path}:{number}: entry lacks 'doc_id' or '{metric}'; re-run with --log_samples"
            )
        entries.append(entry)
    try:
        doc_ids = np.array([e["doc_id"] for e in entries], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise CompassInputError(f"{path}: a 'doc_id' is not an integer") from None
    return _Entries(
        doc_ids=doc_ids,
        filters=np.array([str(e.get("filter", "none")).encode() for e in entries]),
        hashes=np.array([str(e.get("doc_hash") or "").encode() for e in entries]),
        values=[e[metric] for e in entries],
        choices=[len(e.get("arguments") or ()) for e in entries] if count_choices else None,
    )


def _values(path: Path, metric: str, raw: list) -> tuple[np.ndarray, np.ndarray]:
    """The values, and which entries are defined (null, or a pair holding null, is not)."""
    defined = np.array(
        [not (v is None or (isinstance(v, list | tuple) and None in v)) for v in raw], dtype=bool
    )
    if not defined.all():
        kept = [v for v, ok in zip(raw, defined, strict=True) if ok]
        pairs = any(isinstance(v, list | tuple) for v in raw)
        values = _values(path, metric, kept)[0] if kept else np.empty((0, 2) if pairs else 0)
        full = np.full((len(raw), *values.shape[1:]), np.nan)
        full[defined] = values
        return full, defined
    if all(isinstance(v, list | tuple) and len(v) == 2 for v in raw):
        try:
            values = np.array(raw, dtype=float)
        except (TypeError, ValueError):
            # Class names (strings) as gold/pred: code them jointly so equal names stay equal.
            codes = {name: i for i, name in enumerate(sorted({str(x) for v in raw for x in v}))}
            values = np.array([[codes[str(g)], codes[str(p)]] for g, p in raw], dtype=float)
    else:
        try:
            values = np.array(raw, dtype=float)
        except (TypeError, ValueError):
            raise CompassInputError(
                f"{path}: '{metric}' values are neither numbers nor pairs"
            ) from None
        if values.ndim != 1:
            raise CompassInputError(
                f"{path}: '{metric}' values are nested; expected numbers or pairs"
            )
    if not np.all(np.isfinite(values)):
        raise CompassInputError(
            f"{path}: '{metric}' has NaN or infinite values; re-run the evaluation"
        )
    return values, defined
