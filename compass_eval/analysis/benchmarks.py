"""Which task and metric stands for each benchmark, and the JP Fin Harness leaderboard rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from compass_eval.analysis.results import PhaseResults, TaskResult

# Task -> (headline metric, preferred lm-eval filter). A contract with the task definitions.
TASK_METRICS: dict[str, tuple[str, str | None]] = {
    "gsm8k": ("exact_match", "strict-match"),
    "edinet_bench_earnings": ("roc_auc", None),
    "edinet_bench_fraud": ("roc_auc", None),
    "edinet_bench_industry": ("acc", None),
    "gsm8k_cot_xml": ("exact_match", None),
    "edinet_earnings": ("roc_auc", None),
    "edinet_fraud": ("roc_auc", None),
    "edinet_industry": ("acc", None),
    "chabsa": ("f1", None),
    "cma_basics": ("acc", None),
    "cpa_audit": ("acc", None),
    "fp2": ("acc", None),
    "security_sales_1": ("acc", None),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "edinet": ("edinet_earnings", "edinet_fraud", "edinet_industry"),
    "jp_fin_harness": ("chabsa", "cma_basics", "cpa_audit", "fp2", "security_sales_1"),
}
# Compass's own copy of a task that lm-eval also defines, scored identically: one benchmark.
TASK_ALIASES: dict[str, str] = {"compass_gsm8k": "gsm8k"}
# The per-phase table: single tasks, then groups scored as one number.
BENCHMARKS: tuple[str, ...] = (
    "gsm8k",
    "gsm8k_cot_xml",
    "edinet_earnings",
    "edinet_fraud",
    "edinet_industry",
    "edinet_bench_earnings",
    "edinet_bench_fraud",
    "edinet_bench_industry",
    "jp_fin_harness",
)
LEADERBOARD_METRIC = "mean"
# Metrics read as 0.xxx, not as percentages; a mean over a mix of these and others means nothing.
UNSCALED_METRICS = frozenset({"roc_auc", "mcc"})
DEFAULT_VARIANT = "default"
# The harness has no chabsa prompt for these variants and scores them with its parent's.
CHABSA_FALLBACK = {"1.0-0.1.2": "1.0-0.1", "1.0-0.2.1": "1.0-0.2"}
INDUSTRY_LABELS = 16

_VARIANT = re.compile(r"^(?P<base>.+?)-(?P<variant>\d+\.\d+-\d+(?:\.\d+)*)$")


@dataclass(frozen=True)
class TaskScore:
    """A subtask's headline value, and the concrete task (maybe a prompt variant) it came from."""

    subtask: str
    task: TaskResult
    metric: str
    key: str
    value: float


@dataclass(frozen=True)
class BenchmarkScore:
    """One benchmark's score in one phase: a single task's metric or a group's mean."""

    benchmark: str
    metric: str
    value: float
    parts: tuple[TaskScore, ...]
    variant: str | None = None
    # A group's competing prompt variants (the chosen one included), each with the subtasks its
    # mean covers, so resampling repeats the choice; one entry for a single task.
    candidates: tuple[tuple[str | None, tuple[TaskScore, ...]], ...] = ()
    zero_left_out: tuple[str, ...] = ()

    @property
    def undefined(self) -> bool:
        return self.value != self.value  # NaN: e.g. ROC-AUC with one class


def split_variant(task_name: str) -> tuple[str, str]:
    """`cma_basics-1.0-0.2` -> (`cma_basics`, `1.0-0.2`); a plain name is the default prompt."""
    match = _VARIANT.match(task_name)
    return (match["base"], match["variant"]) if match else (task_name, DEFAULT_VARIANT)


def task_score(subtask: str, task: TaskResult) -> TaskScore:
    metric, preferred = TASK_METRICS[subtask]
    key, value = task.metric(metric, preferred)
    return TaskScore(subtask=subtask, task=task, metric=metric, key=key, value=value)


def canonical_tasks(tasks: dict[str, TaskResult]) -> dict[str, TaskResult]:
    """Tasks under the benchmark names the report uses (`compass_gsm8k` is `gsm8k`)."""
    renamed = dict(tasks)
    for alias, name in TASK_ALIASES.items():
        if alias in renamed and name not in renamed:
            renamed[name] = renamed.pop(alias)
    return renamed


def score_phase(phase: PhaseResults) -> dict[str, BenchmarkScore]:
    """Every benchmark this phase has results for; absent ones are simply left out."""
    tasks = canonical_tasks(phase.tasks)
    scores: dict[str, BenchmarkScore] = {}
    for name in BENCHMARKS:
        if name in GROUPS:
            best = leaderboard_score(name, tasks)
            if best is not None:
                scores[name] = best
        elif name in tasks:
            part = task_score(name, tasks[name])
            scores[name] = BenchmarkScore(
                name, part.metric, part.value, (part,), None, ((None, (part,)),)
            )
    return scores


def leaderboard_mean(parts: tuple[TaskScore, ...]) -> tuple[float, tuple[TaskScore, ...]]:
    """The harness leaderboard's average: a subtask scoring exactly 0 is left out (`if result:`
    in japanese-lm-fin-harness's make_leaderboard.py); returns the mean and the parts it covers."""
    counted = tuple(p for p in parts if p.value != 0.0)
    if not counted:
        return 0.0, parts
    return sum(p.value for p in counted) / len(counted), counted


def leaderboard_score(group: str, tasks: dict[str, TaskResult]) -> BenchmarkScore | None:
    """The prompt variant with the best mean over the group's subtasks, as the harness ranks.

    Only variants that cover every subtask compete; ties go to the default prompt, then to the
    variant named first in sort order, so the choice is reproducible.
    """
    subtasks = GROUPS[group]
    variants = {split_variant(name)[1] for name in tasks if split_variant(name)[0] in subtasks}
    competing: list[tuple[str, float, tuple[TaskScore, ...], tuple[TaskScore, ...]]] = []
    for variant in sorted(variants, key=lambda v: (v != DEFAULT_VARIANT, v)):
        parts = []
        for subtask in subtasks:
            task = _variant_task(tasks, subtask, variant)
            if task is None:
                break
            parts.append(task_score(subtask, task))
        else:
            value, counted = leaderboard_mean(tuple(parts))
            competing.append((variant, value, tuple(parts), counted))
    if not competing:
        return None
    variant, value, parts, counted = max(competing, key=lambda c: c[1])  # first wins ties
    return BenchmarkScore(
        benchmark=group,
        metric=LEADERBOARD_METRIC,
        value=value,
        parts=parts,
        variant=variant,
        candidates=tuple((c[0], c[3]) for c in competing),
        zero_left_out=tuple(p.subtask for p in parts if p not in counted),
    )


def _variant_task(tasks: dict[str, TaskResult], subtask: str, variant: str) -> TaskResult | None:
    if variant == DEFAULT_VARIANT:
        return tasks.get(subtask)
    exact = tasks.get(f"{subtask}-{variant}")
    if exact is None and subtask == "chabsa" and variant in CHABSA_FALLBACK:
        return tasks.get(f"chabsa-{CHABSA_FALLBACK[variant]}")
    return exact


def group_parts(
    group: str, scores: dict[str, BenchmarkScore], tasks: dict[str, TaskResult]
) -> dict[str, TaskScore]:
    """The subtask scores behind a group's row, for the per-subtask table.

    A group scored as a whole shows the parts of its chosen variant; otherwise each subtask
    shows its own benchmark score or, failing that, its default-prompt task.
    """
    if group in scores:
        return {p.subtask: p for p in scores[group].parts}
    tasks = canonical_tasks(tasks)
    parts = {}
    for subtask in GROUPS[group]:
        if subtask in scores:
            parts[subtask] = scores[subtask].parts[0]
        elif subtask in tasks:
            parts[subtask] = task_score(subtask, tasks[subtask])
    return parts


def task_chance(part: TaskScore, choices_chance: float | None) -> float | None:
    """Score of a uniform guess: 0.5 ROC-AUC, 1/16 industry, 1/k multiple choice, 0 generation."""
    if part.metric == "roc_auc":
        return 0.5
    if part.subtask == "edinet_industry":
        return 1.0 / INDUSTRY_LABELS
    if part.task.output_type == "generate_until" or part.metric == "exact_match":
        return 0.0
    if part.task.n_choices:
        return 1.0 / part.task.n_choices
    return choices_chance if part.task.output_type == "multiple_choice" else None
