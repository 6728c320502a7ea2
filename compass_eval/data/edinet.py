"""EDINET-Bench records (SakanaAI/EDINET-Bench schema), their splits, and the report text the
log-likelihood prompts show.

Splits are EDINET-Bench's evaluation splits: earnings and fraud `test`, industry `train` (the
dataset has no industry test split; EDINET-Bench's own industry script evaluates `train`).

Truncation policy of the log-likelihood tasks (stated here, recorded in every result's task
metadata): the report is the selected sheets as `"<sheet>: <json string>"` lines, as EDINET-Bench
joins them, within a budget of `max_report_chars` characters. The default budget, `auto`, is
derived from the model's context: `(context_tokens - RESERVED_TOKENS) * CHARS_PER_TOKEN`, where
`context_tokens` is the `max_length` model argument, else the checkpoint's
`max_position_embeddings`. The budget is shared equally between the sheets; a sheet shorter than
its share stays whole and leaves the rest to the others. A cut sheet keeps its head and ends with
`TRUNCATION_MARK`. The prompt text around the report is never cut.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from compass_eval.data.root import require
from compass_eval.paths import tasks_dir
from compass_model.errors import CompassInputError

FAMILY = "edinet"
SPLITS = {"earnings_forecast": "test", "fraud_detection": "test", "industry_prediction": "train"}
TASKS = tuple(SPLITS)
DEFAULT_SHEETS = ("summary", "bs", "pl", "cf")
AUTO = "auto"
RESERVED_TOKENS = 1024  # prompt text around the report, chat template and answer
CHARS_PER_TOKEN = 1.0  # about what a Japanese tokenizer gives on statement JSON (digits, kanji)
TRUNCATION_MARK = " …(truncated)"
TRUNCATION_RULE = (
    "the sheets share max_report_chars characters; a sheet shorter than its share stays whole "
    "and leaves the rest to the others; a cut sheet keeps its head and ends with "
    f"{TRUNCATION_MARK.strip()!r}; the prompt text around the report is never cut"
)
INDUSTRIES = (
    "食品",
    "電気・ガス・エネルギー資源",
    "建設・資材",
    "素材・化学",
    "医薬品",
    "自動車・輸送機",
    "鉄鋼・非鉄",
    "機械",
    "電機・精密",
    "情報通信・サービスその他",
    "運輸・物流",
    "商社・卸売",
    "小売",
    "銀行",
    "金融(除く銀行)",
    "不動産",
)


def industry_index(label: str) -> int:
    """Position of a label in INDUSTRIES; full-width brackets (as TSE writes them) also match."""
    return INDUSTRIES.index(label.replace("（", "(").replace("）", ")").strip())


def relative_file(task: str) -> Path:
    return Path(FAMILY) / task / f"{SPLITS[task]}.jsonl"


@cache
def upstream_prompt(task: str) -> str:
    """EDINET-Bench's instruction for `task`, from its prompt file kept in tasks/edinet_bench/."""
    path = tasks_dir() / "edinet_bench" / "prompt" / f"{task}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["prompt"]


def user_text(task: str, record: Mapping[str, Any], sheets: Sequence[str] = DEFAULT_SHEETS) -> str:
    """EDINET-Bench's user message: the instruction, then every selected sheet of the record
    as a `"<sheet>: <value>"` line, appended directly (as its `process_example` builds it)."""
    return upstream_prompt(task) + "\n".join(
        f"{sheet}: {record[sheet]}" for sheet in sheets if sheet in record
    )


def read_records(task: str) -> list[dict[str, Any]]:
    path = require(str(relative_file(task)), FAMILY)
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def context_tokens(metadata: Mapping[str, Any]) -> int:
    """The model's context in tokens, from the model arguments lm-eval merges into the metadata:
    `max_length`, else the `pretrained` checkpoint's configuration, else the built-in tiny model."""
    if metadata.get("max_length"):
        return int(metadata["max_length"])
    pretrained = metadata.get("pretrained")
    if not pretrained:
        from compass_model.config import PRESETS

        return int(PRESETS["tiny"].text["max_position_embeddings"])
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(pretrained))
    except (OSError, ValueError) as error:
        raise CompassInputError(
            f"pretrained={pretrained}: cannot read its config.json to size the EDINET report "
            f"({error}); set --metadata '{{\"max_report_chars\": N}}'"
        ) from error
    return int(getattr(config, "text_config", config).max_position_embeddings)


def report_policy(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved report budget and how it was chosen, as recorded in the task metadata."""
    setting = metadata.get("max_report_chars", AUTO)
    if setting != AUTO:
        try:
            budget = int(setting)
        except (TypeError, ValueError):
            budget = -1
        if budget < 0:
            raise CompassInputError(
                f"metadata max_report_chars={setting!r}: use a number of characters or 'auto'"
            )
        return {
            "max_report_chars": budget,
            "report_budget": "explicit",
            "truncation": TRUNCATION_RULE,
        }
    tokens = context_tokens(metadata)
    return {
        "max_report_chars": max(0, int((tokens - RESERVED_TOKENS) * CHARS_PER_TOKEN)),
        "context_tokens": tokens,
        "report_budget": (
            f"auto: (context_tokens - {RESERVED_TOKENS}) * {CHARS_PER_TOKEN:g} characters"
        ),
        "truncation": TRUNCATION_RULE,
    }


def sheet_shares(lengths: list[int], budget: int) -> list[int]:
    """Characters each sheet keeps: equal shares of `budget`, short sheets' leftovers passed on."""
    shares = [0] * len(lengths)
    remaining = budget
    by_length = sorted(range(len(lengths)), key=lengths.__getitem__)
    for done, index in enumerate(by_length):
        shares[index] = min(lengths[index], remaining // (len(lengths) - done))
        remaining -= shares[index]
    return shares


def build_report(record: dict[str, Any], sheets: list[str], max_chars: int) -> tuple[str, bool]:
    """The sheets joined as EDINET-Bench joins them, cut to fit `max_chars` together."""
    present = [sheet for sheet in sheets if sheet in record]
    texts = [str(record[sheet]) for sheet in present]
    shares = sheet_shares([len(text) for text in texts], max_chars)
    lines, truncated = [], False
    for sheet, text, share in zip(present, texts, shares, strict=True):
        if len(text) > share:
            text, truncated = text[:share] + TRUNCATION_MARK, True
        lines.append(f"{sheet}: {text}")
    return "\n".join(lines), truncated


def load(task: str, sheets: Sequence[str], max_report_chars: int) -> list[dict[str, Any]]:
    """Records with `report`, `truncated` and an integer `gold` (label, or industry index)."""
    docs = []
    for record in read_records(task):
        report, truncated = build_report(record, list(sheets), int(max_report_chars))
        if task == "industry_prediction":
            gold = industry_index(record["industry"])
        else:
            gold = int(record["label"])
        docs.append(
            {
                "edinet_code": record["edinet_code"],
                "doc_id": record["doc_id"],
                "report": report,
                "truncated": truncated,
                "gold": gold,
            }
        )
    return docs
