"""Chain-of-thought distillation: N problems sampled with a seed across math sources with per-source
quotas; the teacher answers in `<Problem>/<Thinking>/<Answer>\\boxed{}` form; an output is kept
only if well-formed and, where the source has a reference answer, its boxed answer matches it."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compass_model.answer_format import answers_match
from compass_model.errors import CompassInputError
from compass_model.typed import input_error, load, option
from compass_train.synth.generators import assistant, dedup_key, user
from compass_train.synth.teacher import Teacher, TeacherError, TeacherRequest
from compass_train.synth.templates import PromptTemplate
from compass_train.synth.validate import Rejected, check_cot_xml
from compass_train.synth.writer import Outcome


@dataclass(frozen=True)
class MathSource:
    """A local file of problems (JSONL, or a JSON list) and how to read its fields."""

    name: str = option(nonempty=True, help="a unique name")
    path: Path = option(nonempty=True, help="the file, relative to the sources file")
    licence: str = option(nonempty=True, help="the licence of the problems")
    question_field: str = option("question", nonempty=True, help="the field holding a question")
    answer_field: str | None = option("answer", help="the field holding its reference answer")
    answer_regex: str | None = option(
        None, help="a regex whose first group pulls the final answer out of a worked solution"
    )
    quota: int | None = option(None, ge=0, help="problems taken from it (default: by weight)")
    weight: float = option(1.0, gt=0.0, help="its share of what the quotas leave")
    url: str = option("", help="where the file comes from")


@dataclass(frozen=True)
class MathSources:
    """What a sources file holds."""

    sources: list[MathSource] = option(nonempty=True, help="the math sources")


@dataclass(frozen=True)
class Problem:
    id: str
    source: MathSource
    index: int
    question: str
    reference: str | None


def load_sources(path: str | Path) -> list[MathSource]:
    path = Path(path)
    sources = [
        replace(source, path=path.parent / source.path)
        for source in load(MathSources, path, "sources file").sources
    ]
    for source in sources:
        _check_answer_regex(source, f"sources file {path}")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise CompassInputError(f"{path}: source names repeat ({names})")
    return sources


def _check_answer_regex(source: MathSource, where: str) -> None:
    if source.answer_regex is None:
        return
    field = f"sources[{source.name}].answer_regex"
    try:
        groups = re.compile(source.answer_regex).groups
    except re.error as error:
        raise input_error(where, field, f"not a regular expression ({error})", "fix it") from None
    if groups < 1:
        raise input_error(where, field, "has no group", "capture the answer in ( )")


def read_problems(source: MathSource) -> list[tuple[str, str | None]]:
    """(question, reference answer or None) for every usable row of the file."""
    try:
        text = source.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompassInputError(f"source {source.name!r}: {source.path} does not exist") from None
    try:
        if source.path.suffix == ".json":
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise CompassInputError(
            f"{source.path}: not valid JSON ({error.msg}, line {error.lineno})"
        ) from None
    problems = []
    for row in rows:
        question = row.get(source.question_field)
        if not isinstance(question, str) or not question.strip():
            continue
        reference = row.get(source.answer_field) if source.answer_field else None
        if reference is not None and source.answer_regex:
            match = re.search(source.answer_regex, str(reference), re.MULTILINE)
            reference = match.group(1) if match else None
        problems.append((question.strip(), None if reference is None else str(reference).strip()))
    return problems


def allocate(n: int, sources: list[MathSource], sizes: dict[str, int]) -> dict[str, int]:
    """Fixed quotas first; what is left of N is shared by weight (largest remainder, stable)."""
    fixed = {source.name: source.quota for source in sources if source.quota is not None}
    rest = n - sum(fixed.values())
    if rest < 0:
        raise CompassInputError(f"the quotas add up to {sum(fixed.values())}, more than --n {n}")
    shared = [source for source in sources if source.quota is None]
    if rest and not shared:
        raise CompassInputError(f"the quotas add up to {sum(fixed.values())}, less than --n {n}")
    total_weight = sum(source.weight for source in shared)
    exact = {source.name: rest * source.weight / total_weight for source in shared}
    counts = {name: int(value) for name, value in exact.items()}
    leftover = rest - sum(counts.values())
    for name in sorted(exact, key=lambda name: counts[name] - exact[name])[:leftover]:
        counts[name] += 1
    counts.update(fixed)
    for name, count in counts.items():
        if count > sizes[name]:
            raise CompassInputError(
                f"source {name!r} has {sizes[name]} problems, fewer than its share {count}: "
                "lower --n or its quota"
            )
    return counts


def sample_problems(sources: list[MathSource], n: int, seed: int) -> list[Problem]:
    """The same (sources, N, seed) always gives the same problems in the same order."""
    pools = {source.name: read_problems(source) for source in sources}
    counts = allocate(n, sources, {name: len(pool) for name, pool in pools.items()})
    problems = []
    for source in sources:
        chosen = random.Random(f"{seed}/{source.name}").sample(
            range(len(pools[source.name])), counts[source.name]
        )
        for index in chosen:
            question, reference = pools[source.name][index]
            problems.append(
                Problem(f"distill-{source.name}-{index:07d}", source, index, question, reference)
            )
    random.Random(seed).shuffle(problems)
    return problems


def distill_work(teacher: Teacher, template: PromptTemplate) -> Callable[[Problem], Outcome]:
    def work(problem: Problem) -> Outcome:
        outcome = Outcome()
        request = TeacherRequest(
            [user(template.render("request", problem=problem.question))],
            max_tokens=template.max_tokens,
        )
        try:
            text = teacher.complete(request).strip()
        except TeacherError as error:
            return outcome.reject(problem.id, error.reason, error.detail)
        try:
            boxed = check_cot_xml(text)
            if problem.reference is not None and not answers_match(boxed, problem.reference):
                raise Rejected(
                    "answer_mismatch", f"boxed {boxed!r}, reference {problem.reference!r}"
                )
        except Rejected as rejected:
            return outcome.reject(problem.id, rejected.reason, rejected.detail, text)
        record: dict[str, Any] = {
            "id": problem.id,
            "kind": "text_sft",
            "messages": [
                user(template.render("record", problem=problem.question)),
                assistant(text),
            ],
            "images": [],
            "meta": {
                "source": problem.source.name,
                "source_url": problem.source.url,
                "source_index": problem.index,
                "licence": problem.source.licence,
                "reference": problem.reference,
                "boxed": boxed,
                "teacher_model": teacher.model,
                "template_version": template.tag,
                "template_sha256": template.sha256,
                "dedup_key": dedup_key(problem.question),
            },
        }
        outcome.records.append(record)
        return outcome

    return work
