"""Comparability guard: a task scored under different settings in two phases is not a trajectory."""

from __future__ import annotations

from dataclasses import dataclass

from compass_eval.analysis.results import PhaseResults, TaskResult

_FIELDS = {
    "task version": lambda t: t.version,
    "n-shot": lambda t: t.n_shot,
    "limit": lambda t: t.limit,
    "prompt variant": lambda t: _meta(t, "prompt_variant"),
    "data fingerprint": lambda t: _meta(t, "data_fingerprint"),
}


def _meta(task: TaskResult, key: str) -> str | None:
    value = task.metadata.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True)
class Mismatch:
    """One setting that differs for one task between phases."""

    task: str
    setting: str
    values: dict[str, str]

    def message(self) -> str:
        shown = ", ".join(f"{phase}={value}" for phase, value in self.values.items())
        return f"task '{self.task}' differs in {self.setting} between phases ({shown})"


def find_mismatches(phases: list[PhaseResults], tasks: set[str]) -> list[Mismatch]:
    """Compare each task's settings across the phases that record them; absent keys are skipped."""
    found = []
    for task in sorted(tasks):
        for setting, read in _FIELDS.items():
            values = {
                p.name: value
                for p in phases
                if task in p.tasks and (value := read(p.tasks[task])) is not None
            }
            if len(set(values.values())) > 1:
                found.append(Mismatch(task, setting, values))
    return found
