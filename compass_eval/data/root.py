"""Where benchmark files live, and the one-line error when one is missing.

`COMPASS_DATA_DIR` names the data root; unset, it is `$XDG_CACHE_HOME/compass/data` (by default
`~/.cache/compass/data`). The value `demo` selects the small synthetic set bundled with the package.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "COMPASS_DATA_DIR"
DEMO = "demo"


class MissingDataError(SystemExit):
    """A benchmark file is absent.

    A SystemExit so that an uncaught one ends `lm_eval` with its one-line message and a non-zero
    status instead of a traceback; Python callers can still catch it.
    """

    def __init__(self, path: Path, family: str):
        self.path = path
        self.family = family
        super().__init__(
            f"compass: missing data file {path} - get it with `compass-data fetch {family}` "
            f"or `compass-data import {family} <path>` (data root: ${ENV_VAR})"
        )


def demo_root() -> Path:
    return Path(__file__).resolve().parent.parent / "demo_data"


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "compass" / "data"


def data_root() -> Path:
    """The data root in force now (read at every call so tests and runs can switch it)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return default_root()
    if value == DEMO:
        return demo_root()
    return Path(value).expanduser().resolve()


def require(relative: str, family: str) -> Path:
    """The path of a data file under the root, or MissingDataError naming it."""
    path = data_root() / relative
    if not path.exists():
        raise MissingDataError(path, family)
    return path
