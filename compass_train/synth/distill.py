"""Chain-of-thought distillation: N problems sampled with a seed across math sources with per-source
quotas; the teacher answers in `<Problem>/<Thinking>/<Answer>\\boxed{}` form; an output is kept
only if well-formed and, where the source has a reference answer, its boxed answer matches it."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compass_model.answer_format import answers_match
from compass_model.errors import CompassInputError
from compass_train.synth.generators import assistant, dedup_key, user
from compass_train.synth.sources import read_yaml
from compass_train.synth.teacher import Teacher, TeacherError, TeacherRequest
from compass_train.synth.templates import PromptTemplate
from compass_train.synth.validate import Rejected, check_cot_xml
from compass_train.synth.writer import Outcome


@dataclass(frozen=True)
class MathSource:
    """A local file of problems (JSONL, or a JSON list) and how to read its fields."""

    name: str
    path: Path
    licence: str
    question_field: str = "question"
    answer_field: str | None = "answer"
    # A regex whose first group pulls the final answer out of a worked solution (GSM8K: `#### 18`).
    answer_regex: str | None = None
    quota: int | None = None
    weight: float = 1.0
    url: str = ""


@dataclass(frozen=True)
class Problem:
    id: str
    source: MathSource
    index: int
    question: str
    reference: str | None


def load_sources(path: str | Path) -> list[MathSource]:
    path = Path(path)
    raw = read_yaml(path, "sources file")
    known = set(MathSource.__dataclass_fields__)
    sources = []
    for number, entry in enumerate(raw["sources"], 1):
        where = f"{path}: source {entry.get('name', number)!r}"
        unknown = sorted(set(entry) - known)
        if unknown:
            raise CompassInputError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        for key in ("name", "path", "licence"):
            if not entry.get(key):
                raise CompassInputError(f"{where} has no {key!r}: every source needs one")
        sources.append(MathSource(**{**entry, "path": path.parent / entry["path"]}))
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise CompassInputError(f"{path}: source names repeat ({names})")
    return sources


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
