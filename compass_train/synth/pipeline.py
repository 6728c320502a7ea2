"""The commands' work, without the command line: open the teacher (behind the request cache), build
the ordered work items, run them into shards, write the dataset card."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compass_train.synth.cache import CachedTeacher, RequestCache
from compass_train.synth.config import DistillConfig, SynthConfig, TeacherConfig
from compass_train.synth.distill import distill_work, load_sources, sample_problems
from compass_train.synth.generators import GENERATORS, page_items, page_work
from compass_train.synth.sources import read_index
from compass_train.synth.teacher import OpenAIChatClient, Teacher, TeacherConfigError
from compass_train.synth.templates import PromptTemplate, load_template
from compass_train.synth.writer import Outcome, run_sharded, write_card

CACHE_NAME = "teacher_cache.sqlite"


def open_teacher(config: TeacherConfig, out_root: Path) -> CachedTeacher:
    """An HTTP client for a URL, else the in-process backend; either way behind the cache."""
    teacher: Teacher
    if config.teacher.startswith(("http://", "https://")):
        client = OpenAIChatClient(
            config.teacher,
            config.model or "",
            config.timeout,
            config.retries,
            config.backoff,
            api_key=config.api_key,
        )
        served = client.served_models()
        if not config.model:
            if len(served) != 1:
                raise TeacherConfigError(
                    f"teacher {config.teacher} serves {served or 'no listed model'}: pass --model"
                )
            client.model = served[0]
        elif served and config.model not in served:
            raise TeacherConfigError(
                f"teacher {config.teacher} serves {', '.join(served)}, not {config.model!r}: fix --model"
            )
        teacher = client
    else:
        from compass_train.synth.inprocess import InProcessTeacher

        teacher = InProcessTeacher.from_spec(config.teacher)
        if config.model:
            teacher.model = config.model
    return CachedTeacher(
        teacher, RequestCache(config.cache or out_root / CACHE_NAME), config.max_tokens
    )


def _run(
    teacher: CachedTeacher,
    teacher_config: TeacherConfig,
    template: PromptTemplate,
    out_dir: Path,
    items: Sequence[Any],
    work: Callable[[Any], Outcome],
    settings: dict[str, Any],
    shard_size: int,
    title: str,
) -> dict[str, Any]:
    """Shared by every command: what makes outputs differ goes into the run's settings."""
    settings = {
        **settings,
        "teacher_model": teacher.model,
        "max_tokens": teacher_config.max_tokens,
        "template_version": template.tag,
        "template_sha256": template.sha256,
        "shard_size": shard_size,
    }
    try:
        run_sharded(out_dir, items, work, settings, shard_size, teacher_config.concurrency)
        card = write_card(out_dir, settings, title)
    finally:
        teacher.cache.close()
    return {
        **card,
        "out_dir": str(out_dir),
        "cache_hits": teacher.hits,
        "requests_sent": teacher.misses,
    }


def run_synth(
    generator_name: str, config: SynthConfig, teacher_config: TeacherConfig
) -> dict[str, Any]:
    """One generator over every page of the indexed PDFs into <out>/<generator>/; returns the card."""
    pdfs, _ = read_index(config.pdf_dir)
    template = load_template(generator_name, config.template_version)
    out_dir = config.out / generator_name
    teacher = open_teacher(teacher_config, config.out)
    generator = GENERATORS[generator_name](teacher, template)
    settings = {
        "command": f"synth {generator_name}",
        "longest_side": config.longest_side,
        "pdfs": [{"path": pdf.path, "url": pdf.url, "sha256": pdf.sha256} for pdf in pdfs],
    }
    return _run(
        teacher,
        teacher_config,
        template,
        out_dir,
        page_items(generator_name, pdfs),
        page_work(generator, config.pdf_dir, out_dir, config.longest_side),
        settings,
        config.shard_size,
        f"Compass synthetic {generator_name} data",
    )


def run_distill(config: DistillConfig, teacher_config: TeacherConfig) -> dict[str, Any]:
    """N sampled problems answered by the teacher into <out>/distill/; returns the card."""
    sources = load_sources(config.sources)
    problems = sample_problems(sources, config.n, config.seed)
    template = load_template("distill", config.template_version)
    teacher = open_teacher(teacher_config, config.out)
    settings = {
        "command": "distill",
        "n": config.n,
        "seed": config.seed,
        "sources": [{**dataclasses.asdict(source), "path": str(source.path)} for source in sources],
    }
    return _run(
        teacher,
        teacher_config,
        template,
        config.out / "distill",
        problems,
        distill_work(teacher, template),
        settings,
        config.shard_size,
        "Compass chain-of-thought distillation data",
    )
