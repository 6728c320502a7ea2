"""Reads the JP Fin Harness's own data files into the record shape its tasks were written for.

The harness built its datasets with loading scripts (which `datasets` 5 no longer runs); these
functions reproduce what those scripts yielded, field for field, so its prompts render unchanged:
`choices` is `{"id": [...], "text": [...]}` as a `datasets` Sequence of dicts becomes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from compass_eval.data.root import MissingDataError, data_root, require

FAMILY = "jp_fin_harness"
JSON_FILES = {
    "cma_basics": "cma_basics.json",
    "fp2": "fp2.json",
    "security_sales_1": "security_sales_1.json",
}
CPA_FILE = "CPA_AUDIT.xlsx"
CHABSA_DIR = "chABSA-dataset"
_CPA_STATEMENT_COLUMNS = ("ア", "イ", "ウ", "エ", "オ", "カ")


def _choices(pairs: list[tuple[int, str]]) -> dict[str, list[Any]]:
    return {"id": [i for i, _ in pairs], "text": [t for _, t in pairs]}


def load_exam_json(name: str) -> list[dict[str, Any]]:
    """cma_basics / fp2 / security_sales_1: the `data` list of the harness's json file."""
    path = require(f"{FAMILY}/{JSON_FILES[name]}", FAMILY)
    rows = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        {
            "id": row["id"],
            "question": row["question"],
            "context": row["context"],
            "choices": _choices([(c["id"], c["text"]) for c in row["choices"]]),
            "answer": row["answer"],
            "comment": row["comment"],
        }
        for row in rows
    ]


def _as_harness_text(value: Any) -> str:
    # The harness's builder stored every cell with str(); an empty cell therefore became "nan".
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return str(value)


def load_cpa_audit() -> list[dict[str, Any]]:
    """CPA_AUDIT.xlsx: rows with a question and abnormal_flg 0; statements ア..カ become context."""
    path = require(f"{FAMILY}/{CPA_FILE}", FAMILY)
    frame = pd.read_excel(path, index_col=0, dtype=object)
    records = []
    for row in frame.to_dict(orient="records"):
        question = _as_harness_text(row["question"])
        if question in ("", "nan") or row["abnormal_flg"] == 1:
            continue
        statements = [
            f"{mark}: {text}"
            for mark in _CPA_STATEMENT_COLUMNS
            if (text := _as_harness_text(row.get(mark))) not in ("", "nan")
        ]
        records.append(
            {
                "id": len(records),
                "question": question,
                "context": "\n".join(statements),
                # The sixth choice is empty for four-statement questions; the harness kept it as
                # the text "nan", so published scores include that option: keep it comparable.
                "choices": _choices([(i, _as_harness_text(row[i + 1])) for i in range(6)]),
                "answer": int(row["a_no"]) - 1,
            }
        )
    return records


def load_chabsa() -> list[dict[str, Any]]:
    """chABSA: one record per (sentence, opinion) over the per-company json files, in name order."""
    folder = data_root() / FAMILY / CHABSA_DIR
    files = sorted(folder.glob("*.json"))
    if not files:
        raise MissingDataError(folder / "*.json", FAMILY)
    records = []
    for file in files:
        for sentence in json.loads(file.read_text(encoding="utf-8"))["sentences"]:
            for opinion in sentence["opinions"]:
                records.append(
                    {
                        "id": len(records),
                        # the opinions of one company's report are not independent
                        "source_file": file.stem,
                        "sentence": sentence["sentence"],
                        "target": opinion["target"],
                        "polarity": opinion["polarity"],
                    }
                )
    return records


LOADERS = {
    "cma_basics": lambda: load_exam_json("cma_basics"),
    "fp2": lambda: load_exam_json("fp2"),
    "security_sales_1": lambda: load_exam_json("security_sales_1"),
    "cpa_audit": load_cpa_audit,
    "chabsa": load_chabsa,
}


def files_of(source: str) -> list[Path]:
    """Paths (relative to the root) that a source reads, for status and import checks."""
    if source in JSON_FILES:
        return [Path(FAMILY) / JSON_FILES[source]]
    if source == "cpa_audit":
        return [Path(FAMILY) / CPA_FILE]
    return [Path(FAMILY) / CHABSA_DIR]
