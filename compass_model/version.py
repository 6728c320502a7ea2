"""`--version` for every Compass command: Compass's own version beside those of the libraries its
results depend on, so a bug report or a CI log says what produced it. Read from the installed
distributions' metadata, so asking for it imports none of them."""

from __future__ import annotations

import argparse
from importlib import metadata

DISTRIBUTION = "compass-eval"
LIBRARIES = ("lm-eval", "torch", "transformers")


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_text() -> str:
    libraries = ", ".join(f"{name} {_installed(name)}" for name in LIBRARIES)
    return f"compass {_installed(DISTRIBUTION)} ({libraries})"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`--version`: prints version_text() and exits 0, before any other argument is checked."""
    parser.add_argument("--version", action="version", version=version_text())
