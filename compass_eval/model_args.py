"""`--model_args` of `lm_eval --model compass`, declared once and checked by the one converter.

lm-eval hands the values over after guessing their types (`phase=2` arrives as the number 2,
`allow_pickle=1` as 1, `max_length=abc` as text) and its own flags as text (`--batch_size 8` is
"8"); `parse_model_args` takes those guesses back where the declaration says otherwise, then
checks every value against it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from compass_model.dtypes import DType
from compass_model.typed import convert, option

_SWITCH_WORDS = {"1": True, "true": True, "0": False, "false": False}


@dataclass(frozen=True)
class ModelArgs:
    """What `--model compass` accepts in `--model_args` (and from lm-eval's --batch_size,
    --max_batch_size and --device)."""

    pretrained: str | None = option(
        None, nonempty=True, help="phase checkpoint directory; none: the tiny random model"
    )
    phase: str | None = option(None, help="the phase's label (default: its manifest's)")
    dtype: DType = option("float32", help="weights' dtype")
    device: str | None = option(None, help="torch device (default: cuda where there is one)")
    max_length: int | None = option(
        None, ge=1, help="context length in tokens (default: the model's own)"
    )
    truncation: Literal["left", "right", "middle"] = option(
        "left",
        help="the side of a too-long context that is cut (never the continuation); middle keeps "
        "its first keep_head_tokens and its end",
    )
    keep_head_tokens: int = option(1024, ge=0, help="tokens truncation=middle keeps at the start")
    batch_size: int | Literal["auto"] = option(
        1, ge=1, help="requests per forward pass, or auto for the largest that fits"
    )
    max_batch_size: int | None = option(None, ge=1, help="the cap of batch_size=auto")
    allow_pickle: bool = option(False, help="load pickle weights (they can run code)")
    add_bos_token: bool = option(True, help="begin every request with the BOS token")


def parse_model_args(values: dict[str, Any]) -> ModelArgs:
    """lm-eval's parsed `--model_args` (and flags) as ModelArgs; CompassInputError otherwise."""
    hints = typing.get_type_hints(ModelArgs)
    undone = {key: _undo_guess(hints.get(key), value) for key, value in values.items()}
    return convert(ModelArgs, undone, "--model_args")


def _undo_guess(hint: Any, value: Any) -> Any:
    """Text fields take numbers back as text, switches take 1 / 0 and true / false, whole
    numbers take digit text (lm-eval's flags)."""
    kinds = set(typing.get_args(hint)) or {hint}
    if isinstance(value, bool):
        return value
    if str in kinds and isinstance(value, int | float):
        return str(value)
    if bool in kinds and str(value).lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[str(value).lower()]
    if int in kinds and isinstance(value, str) and value.isdigit():
        return int(value)
    return value
