"""Content hashes of evaluated documents, so results on different data are never compared."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def _default(value: Any) -> Any:
    # numpy scalars and other non-JSON leaves hash by their text form
    return str(value)


def fingerprint_docs(docs: Iterable[dict[str, Any]]) -> str:
    """sha256 over the documents in order, each as canonical JSON (sorted keys, UTF-8)."""
    digest = hashlib.sha256()
    for doc in docs:
        line = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=_default)
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
