"""Writes lm-eval-shaped results JSONs and sample logs from per-document values, for the tests."""

from __future__ import annotations

import json
from pathlib import Path

AGGREGATIONS = {"acc": "mean", "exact_match": "mean", "roc_auc": "roc_auc", "f1": "chabsa_f1"}


def write_phase(folder: Path, tasks: dict[str, dict]) -> Path:
    """tasks: name -> {"metric", "values" (per doc), optional "doc_ids", "hashes", "score",
    "docs" (per-doc dicts), "metadata"}. The score defaults to what lm-eval would aggregate."""
    folder.mkdir(parents=True, exist_ok=True)
    date = "2026-01-01T00-00-00.000000"
    results, configs = {}, {}
    for name, spec in tasks.items():
        metric = spec["metric"]
        values = spec["values"]
        doc_ids = spec.get("doc_ids", list(range(len(values))))
        hashes = spec.get("hashes", [f"h{i}" for i in doc_ids])
        docs = spec.get("docs", [{"id": i} for i in doc_ids])
        results[name] = {f"{metric},none": spec["score"]}
        configs[name] = {
            "metric_list": [{"metric": metric, "aggregation": AGGREGATIONS[metric]}],
            "output_type": "multiple_choice",
            "metadata": spec.get("metadata", {}),
        }
        with open(folder / f"samples_{name}_{date}.jsonl", "w", encoding="utf-8") as handle:
            for doc_id, doc, value, digest in zip(doc_ids, docs, values, hashes, strict=True):
                entry = {
                    "doc_id": doc_id,
                    "doc": doc,
                    "target": 0,
                    "arguments": {"gen_args_0": {"arg_0": "q", "arg_1": " a"}},
                    "resps": [],
                    "filtered_resps": [],
                    "filter": "none",
                    "metrics": [metric],
                    "doc_hash": digest,
                    "prompt_hash": "p",
                    "target_hash": "t",
                    metric: value,
                }
                handle.write(json.dumps(entry) + "\n")
    data = {
        "results": results,
        "configs": configs,
        "versions": {name: 1.0 for name in tasks},
        "n-shot": {name: 0 for name in tasks},
        "config": {"limit": None},
        "date": 1.0,
    }
    path = folder / f"results_{date}.json"
    path.write_text(json.dumps(data, allow_nan=True), encoding="utf-8")
    return path


def binary(correct: int, total: int, first: int = 0) -> list[float]:
    """`total` 0/1 values, the `first`.. `first + correct - 1` ones set."""
    return [1.0 if first <= i < first + correct else 0.0 for i in range(total)]


def acc_task(values: list[float], **extra) -> dict:
    return {"metric": "acc", "values": values, "score": sum(values) / len(values), **extra}
