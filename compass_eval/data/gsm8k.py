"""GSM8K from local JSONL files (`gsm8k/test.jsonl`, `gsm8k/train.jsonl`, openai's format)."""

from __future__ import annotations

import json
from typing import Any

from compass_eval.data.root import require

FAMILY = "gsm8k"
SPLITS = ("test", "train")


def relative_file(split: str) -> str:
    return f"{FAMILY}/{split}.jsonl"


def load(split: str) -> list[dict[str, Any]]:
    path = require(relative_file(split), FAMILY)
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [{"question": row["question"], "answer": row["answer"]} for row in rows]
