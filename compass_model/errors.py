"""Errors the user can fix from the message alone; command-line entry points show them as one line."""

from __future__ import annotations

import os
import sys
from types import TracebackType


class CompassInputError(ValueError):
    """Bad input (a path, a field, an argument): the message names it and says what to do."""


def print_input_errors_as_one_line() -> None:
    """For commands we do not own (the `lm_eval` CLI): an uncaught CompassInputError becomes one
    line on stderr and exit status 2 instead of a traceback; anything else is left as it was."""
    previous = sys.excepthook
    if getattr(previous, "_compass", False):
        return

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if not isinstance(error, CompassInputError):
            previous(kind, error, tb)
            return
        print(f"error: {error}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)

    hook._compass = True  # type: ignore[attr-defined]
    sys.excepthook = hook
