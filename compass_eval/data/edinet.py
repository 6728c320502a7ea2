"""EDINET-Bench records (SakanaAI/EDINET-Bench schema) and the report text the prompts show.

Truncation policy (stated here, recorded in every result's task metadata): the report is the
selected sheets as `"<sheet>: <json string>"` lines, as EDINET-Bench joins them; each sheet keeps
its first `max_report_chars // len(sheets)` characters and, when cut, ends with
`TRUNCATION_MARK`. The instruction before the report and the question and answer cue after it are
never cut, so a long report cannot push the question out of the prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compass_eval.data.root import require

FAMILY = "edinet"
TASKS = ("earnings_forecast", "fraud_detection", "industry_prediction")
DEFAULT_SHEETS = ("summary", "bs", "pl", "cf")
DEFAULT_MAX_REPORT_CHARS = 12000
TRUNCATION_MARK = " …(truncated)"
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
    return Path(FAMILY) / task / "test.jsonl"


def read_records(task: str) -> list[dict[str, Any]]:
    path = require(str(relative_file(task)), FAMILY)
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_report(record: dict[str, Any], sheets: list[str], max_chars: int) -> tuple[str, bool]:
    """The sheets joined as EDINET-Bench joins them, each cut to its share of `max_chars`."""
    present = [sheet for sheet in sheets if sheet in record and record[sheet] is not None]
    share = max_chars // max(len(present), 1)
    lines, truncated = [], False
    for sheet in present:
        text = str(record[sheet])
        if len(text) > share:
            text, truncated = text[:share] + TRUNCATION_MARK, True
        lines.append(f"{sheet}: {text}")
    return "\n".join(lines), truncated


def load(
    task: str,
    sheets: list[str] | tuple[str, ...] = DEFAULT_SHEETS,
    max_report_chars: int = DEFAULT_MAX_REPORT_CHARS,
) -> list[dict[str, Any]]:
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
