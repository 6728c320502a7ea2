"""Errors the user can fix from the message alone; command-line entry points show them as one line
(inside the `lm_eval` command, `compass_eval.lm_eval_hook` does)."""

from __future__ import annotations


class CompassInputError(ValueError):
    """Bad input (a path, a field, an argument): the message names it and says what to do."""
