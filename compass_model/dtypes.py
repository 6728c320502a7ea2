"""The weights' dtypes a user may name, declared once; torch is imported only when one is used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DType = Literal["float32", "bfloat16", "float16"]


def torch_dtype(name: DType) -> torch.dtype:
    import torch

    return getattr(torch, name)
