"""Typed run settings, each command's flags generated from its dataclass (one `--flag` per field,
help from the field's metadata), so there is no per-flag glue between the CLI and the core."""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


def option(text: str, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class TeacherConfig:
    teacher: str = option(
        "an OpenAI-compatible base URL (http://host:port/v1), or `tiny[:SEED]` or a checkpoint directory to run in-process"
    )
    model: str | None = option(
        "the model name the server serves (default: the server's or the checkpoint's)", None
    )
    concurrency: int = option("requests in flight at once", 8)
    timeout: float = option("seconds to wait for one answer", 120.0)
    retries: int = option("further tries after a failed request (HTTP 5xx/429, timeout)", 3)
    backoff: float = option("seconds before the first retry; doubles each time", 1.0)
    max_tokens: int | None = option(
        "cap on tokens per answer (default: each template's own limit)", None
    )
    cache: Path | None = option("request cache (SQLite); default: <out>/teacher_cache.sqlite", None)
    api_key_env: str = option(
        "environment variable holding the API key, if the server needs one", "OPENAI_API_KEY"
    )

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


@dataclass(frozen=True)
class SynthConfig:
    pdf_dir: Path = option("the PDF directory indexed by `pdfs`")
    out: Path = option("output root; the dataset goes to <out>/<generator>/")
    longest_side: int = option(
        "render pages so that the longer side has this many pixels (the model's resolution)", 384
    )
    shard_size: int = option("work items per JSONL shard", 256)
    template_version: int | None = option("prompt template version (default: the newest)", None)


@dataclass(frozen=True)
class DistillConfig:
    sources: Path = option("YAML list of math sources (local files, fields, quotas, licences)")
    n: int = option("problems to sample")
    out: Path = option("output root; the dataset goes to <out>/distill/")
    seed: int = option("sampling seed", 0)
    shard_size: int = option("problems per JSONL shard", 1024)
    template_version: int | None = option("prompt template version (default: the newest)", None)


def _flag_type(annotation: Any) -> type:
    if isinstance(annotation, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def add_options(parser: argparse.ArgumentParser, config: type) -> None:
    hints = typing.get_type_hints(config)
    for spec in dataclasses.fields(config):
        required = spec.default is dataclasses.MISSING
        parser.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            type=_flag_type(hints[spec.name]),
            required=required,
            default=None if required else spec.default,
            help=spec.metadata["help"]
            + ("" if required or spec.default is None else f" (default: {spec.default})"),
        )


def from_args(config: type[Config], args: argparse.Namespace) -> Config:
    return config(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config)})
