"""Typed run settings of the data commands. Each command's flags come from its dataclass
(`compass_model.typed.add_flags`: one `--flag` per field, help and range from the field), so
there is no per-flag glue between the CLI and the core, and a flag is checked like a file's value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from compass_model.typed import option


@dataclass(frozen=True)
class TeacherConfig:
    teacher: str = option(
        help="an OpenAI-compatible base URL (http://host:port/v1), or `tiny[:SEED]` or a "
        "checkpoint directory to run in-process",
        nonempty=True,
    )
    model: str | None = option(
        None, help="the model name the server serves (default: the server's or the checkpoint's)"
    )
    concurrency: int = option(8, ge=1, le=1024, help="requests in flight at once")
    timeout: float = option(120.0, gt=0.0, help="seconds to wait for one answer")
    retries: int = option(
        3, ge=0, le=100, help="further tries after a failed request (HTTP 5xx/429, timeout)"
    )
    backoff: float = option(1.0, ge=0.0, help="seconds before the first retry; doubles each time")
    max_tokens: int | None = option(
        None, ge=1, help="cap on tokens per answer (default: each template's own limit)"
    )
    cache: Path | None = option(
        None, help="request cache (SQLite); default: <out>/teacher_cache.sqlite"
    )
    api_key_env: str = option(
        "OPENAI_API_KEY", help="environment variable holding the API key, if the server needs one"
    )

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


@dataclass(frozen=True)
class SynthConfig:
    pdf_dir: Path = option(help="the PDF directory indexed by `pdfs`")
    out: Path = option(help="output root; the dataset goes to <out>/<generator>/")
    longest_side: int = option(
        384,
        ge=16,
        le=8192,
        help="render pages so that the longer side has this many pixels (the model's resolution)",
    )
    shard_size: int = option(256, ge=1, help="work items per JSONL shard")
    template_version: int | None = option(
        None, ge=1, help="prompt template version (default: the newest)"
    )


@dataclass(frozen=True)
class DistillConfig:
    sources: Path = option(help="YAML list of math sources (local files, fields, quotas, licences)")
    n: int = option(ge=1, help="problems to sample")
    out: Path = option(help="output root; the dataset goes to <out>/distill/")
    seed: int = option(0, ge=0, help="sampling seed")
    shard_size: int = option(1024, ge=1, help="problems per JSONL shard")
    template_version: int | None = option(
        None, ge=1, help="prompt template version (default: the newest)"
    )
