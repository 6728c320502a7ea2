"""Where a phase's checkpoint came from, read from its `compass_phase.json` (best effort).

A results file names the checkpoint it was computed on; when that is a local folder holding the
trainer's manifest, the report shows the parent phase, a digest of the resolved recipe, each
stage's steps and final loss, and the loss curves beside it. Anything missing or unreadable is
simply not shown: provenance informs the reader, it never decides a number.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

# compass_model.checkpoint.MANIFEST; not imported, since that module loads torch and transformers.
MANIFEST = "compass_phase.json"
_DIGEST_CHARS = 12


def recipe_digest(manifest: dict) -> str:
    """sha256 of the resolved recipe as the manifest records it (model, seed, precision and every
    stage's settings), so two phases trained from the same recipe show the same digest."""
    recipe = {
        "model": manifest.get("model"),
        "seed": manifest.get("seed"),
        "mixed_precision": manifest.get("mixed_precision"),
        "stages": [s.get("recipe") for s in manifest.get("stages") or [] if isinstance(s, dict)],
    }
    canonical = json.dumps(recipe, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]


def _finite(value: object) -> float | None:
    """A loss report.json can hold (it refuses NaN and infinities)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def read_provenance(checkpoint: str | None) -> dict | None:
    """The manifest's summary for a local checkpoint folder, or None."""
    if not checkpoint:
        return None
    folder = Path(checkpoint)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    stages = [s for s in manifest.get("stages") or [] if isinstance(s, dict)]
    return {
        "checkpoint": str(folder),
        "phase": manifest.get("phase"),
        "parent": manifest.get("parent"),
        "recipe": manifest.get("recipe"),
        "recipe_digest": recipe_digest(manifest),
        "stages": [
            {
                "name": s.get("name"),
                "steps": s.get("steps") if isinstance(s.get("steps"), int) else None,
                "final_loss": _finite(s.get("final_loss")),
                "adapter": (s.get("adapter") or {}).get("type")
                if isinstance(s.get("adapter"), dict)
                else None,
            }
            for s in stages
        ],
        "loss_plots": [
            str(folder / f"loss_{s.get('name')}.png")
            for s in stages
            if (folder / f"loss_{s.get('name')}.png").is_file()
        ],
        "git_revision": manifest.get("git_revision"),
        "created": manifest.get("created"),
    }
