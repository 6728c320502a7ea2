"""Provenance written into every phase checkpoint (`compass_phase.json`): where it came from,
what each stage did, on which data, with which libraries and source revision."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from compass_train.recipe import Recipe

_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(where: Path) -> str | None:
    """The source revision (with `+dirty` for uncommitted changes), None outside a repository."""
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, check=True
            ).stdout.strip()

        revision = git("rev-parse", "HEAD")
        return revision + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def phase_manifest(
    recipe: Recipe,
    phase: str,
    parent: dict[str, Any] | None,
    parent_path: Path | None,
    stages: list[dict[str, Any]],
    wall_time_s: float,
) -> dict[str, Any]:
    return {
        "phase": phase,
        "parent": parent["phase"] if parent else None,
        "parent_path": str(parent_path) if parent_path else None,
        "parent_run_id": parent["run_id"] if parent else None,
        "run_id": uuid.uuid4().hex,
        "recipe": recipe.name,
        "model": asdict(recipe.model),
        "seed": recipe.seed,
        "mixed_precision": recipe.mixed_precision,
        "stages": stages,
        "libraries": library_versions(),
        "git_revision": git_revision(Path(__file__).parent),
        "wall_time_s": round(wall_time_s, 3),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
