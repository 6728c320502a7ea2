"""What each phase was evaluated with, read from its results files: the report's settings block.

A reviewer compares phases only if they ran under the same settings, so the block shows, per
phase, the run's settings (lm-eval version, model, checkpoint, limit, chat template) and, per
task, the settings that decide comparability (n-shot, task version, data fingerprint, documents
scored). A run with `--limit`, or one that scored fewer documents than its split holds, is
partial.
"""

from __future__ import annotations

import json
from pathlib import Path

from compass_eval.analysis.results import PhaseResults

# Settings that differ between phases by design (each phase is its own checkpoint).
PER_PHASE = frozenset({"checkpoint"})
_SHORT_HASH = 12


def _header(path: Path) -> dict:
    """The results file without its bulky parts; {} when it cannot be read again."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _short(value: object) -> str | None:
    """A hex digest (`sha256:…` or bare) cut to its first characters; other text as it is."""
    if value is None:
        return None
    text = str(value)
    digest = text.partition(":")[2] or text
    is_hex = len(digest) > _SHORT_HASH and all(c in "0123456789abcdef" for c in digest.lower())
    return digest[:_SHORT_HASH] if is_hex else text


def checkpoint_of(config: dict) -> str | None:
    """The pretrained path the run was given: the compass model records it, others pass it in
    `model_args` as `pretrained=PATH`."""
    recorded = config.get("compass_pretrained")
    if isinstance(recorded, str):
        return recorded
    args = config.get("model_args")
    if isinstance(args, str):
        for item in args.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip() == "pretrained":
                return value.strip()
    if isinstance(args, dict) and isinstance(args.get("pretrained"), str):
        return args["pretrained"]
    return None


def _chat_template(header: dict) -> str:
    sha = header.get("chat_template_sha")
    if sha:
        return f"applied (sha {_short(sha)})"
    if "chat_template" in header:
        return "not applied"
    return "not recorded"


def _run_values(header: dict) -> dict[str, str | None]:
    config = header.get("config") if isinstance(header.get("config"), dict) else {}
    limit = config.get("limit", "not recorded")
    multiturn = header.get("fewshot_as_multiturn")
    return {
        "lm-eval version": _text(header.get("lm_eval_version")),
        "model": _text(config.get("model")),
        "checkpoint": checkpoint_of(config),
        "limit": "none (whole split)" if limit is None else str(limit),
        "chat template": _chat_template(header),
        "few-shot as multi-turn": None if multiturn is None else str(bool(multiturn)).lower(),
        "system instruction": "yes" if header.get("system_instruction") else None,
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _documents(header: dict, task: str) -> str | None:
    counts = (
        header.get("n-samples", {}).get(task) if isinstance(header.get("n-samples"), dict) else None
    )
    if not isinstance(counts, dict) or "effective" not in counts:
        return None
    effective, original = counts.get("effective"), counts.get("original")
    return str(effective) if effective == original else f"{effective} of {original}"


def phase_settings(phase: PhaseResults, tasks: list[str]) -> dict:
    """Run-level and per-task settings of one phase, as strings (None where not recorded).

    A phase read from several results files shows each run-level value once per distinct value.
    """
    headers = {path: _header(path) for path in sorted({phase.tasks[t].source for t in tasks})}
    run: dict[str, list[str]] = {}
    for header in headers.values():
        for key, value in _run_values(header).items():
            if value is not None and value not in run.setdefault(key, []):
                run[key].append(value)
    per_task = {}
    partial = []
    for name in tasks:
        task = phase.tasks[name]
        header = headers[task.source]
        documents = _documents(header, name)
        if documents is not None and " of " in documents:
            partial.append(f"{name} scored {documents} documents")
        per_task[name] = {
            "n-shot": task.n_shot,
            "task version": task.version,
            "data fingerprint": _short(task.metadata.get("data_fingerprint")),
            "documents": documents,
        }
    limits = [v for v in run.get("limit", []) if v not in ("none (whole split)", "not recorded")]
    if limits:
        partial.insert(0, f"evaluated with --limit {', '.join(limits)}")
    return {
        "run": {key: ", ".join(values) for key, values in run.items()},
        "tasks": per_task,
        "partial": partial,
    }


def differing(values: dict[str, str | None]) -> bool:
    """Two phases recorded different values for a setting."""
    return len({v for v in values.values() if v is not None}) > 1
