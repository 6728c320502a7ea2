"""Where the shipped task and report folders are, in a wheel install and in a source checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(installed_name: str, source_name: str) -> Path:
    # A wheel carries the folders inside the package; a checkout has them at the repository root.
    inside = _PACKAGE / installed_name
    return inside if inside.is_dir() else _PACKAGE.parent / source_name


def tasks_dir() -> Path:
    return _shipped("_tasks", "tasks")


def reports_dir() -> Path:
    return _shipped("_reports", "reports")
