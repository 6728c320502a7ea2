"""Forgetting, gain and retention along the phase sequence: plain numbers in, plain numbers out.

Scores are higher-is-better; a phase without a score is None and is skipped, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Scores = Sequence[float | None]


@dataclass(frozen=True)
class Trajectory:
    """Per-phase forgetting, delta vs the first phase, and retention of the best score so far."""

    forgetting: list[float | None]
    delta_vs_first: list[float | None]
    retention: list[float | None]


def trajectory(scores: Scores) -> Trajectory:
    """forgetting_k = max(0, max_{j<k} s_j − s_k); delta_k = s_k − s_0; retention_k = s_k / max_{j≤k} s_j."""
    forgetting: list[float | None] = []
    delta: list[float | None] = []
    retention: list[float | None] = []
    first = scores[0] if scores else None
    for k, score in enumerate(scores):
        earlier = [s for s in scores[:k] if s is not None]
        if score is None:
            forgetting.append(None)
            delta.append(None)
            retention.append(None)
            continue
        forgetting.append(max(0.0, max(earlier) - score) if earlier else 0.0)
        delta.append(None if first is None else score - first)
        peak = max([*earlier, score])
        retention.append(score / peak if peak > 0 else None)
    return Trajectory(forgetting, delta, retention)


@dataclass(frozen=True)
class Peak:
    """The single best phase, or the phases sharing the top score; neither when all are equal."""

    best: int | None
    tied: list[int]


def peak(scores: Scores) -> Peak:
    """A shared top score is a tie, not a peak; a row that never changes (all 0, say) has none."""
    present = [(k, s) for k, s in enumerate(scores) if s is not None]
    if not present:
        return Peak(None, [])
    top = max(s for _, s in present)
    at_top = [k for k, s in present if s == top]
    if len(at_top) == 1:
        return Peak(at_top[0], [])
    return Peak(None, [] if len(at_top) == len(present) else at_top)


def column_means(rows: Sequence[Scores]) -> list[float | None]:
    """Per-phase mean over rows; a row with any gap is excluded so every mean covers the same rows."""
    complete = [row for row in rows if all(v is not None for v in row)]
    if not complete:
        return [None] * (len(rows[0]) if rows else 0)
    return [sum(row[k] for row in complete) / len(complete) for k in range(len(complete[0]))]
