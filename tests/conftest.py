"""Shared fixtures: a tiny phase checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A saved phase checkpoint of the seeded tiny model, labelled p0."""
    from compass_model.assemble import build_tiny
    from compass_model.checkpoint import save_checkpoint

    model, processor = build_tiny()
    out = tmp_path_factory.mktemp("ckpt") / "p0"
    return save_checkpoint(model, processor, out, {"phase": "p0", "parent": None})
