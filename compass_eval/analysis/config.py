"""Typed configuration read once from YAML or from command-line flags, unknown keys rejected."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from compass_model.errors import CompassInputError

T = TypeVar("T")


def from_mapping(cls: type[T], data: object, where: str) -> T:
    """Build a dataclass from a mapping, recursing into nested dataclass and dict fields."""
    if not isinstance(data, dict):
        raise CompassInputError(
            f"{where}: expected a mapping of settings, got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CompassInputError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(known))}"
        )
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def _convert(hint: Any, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise CompassInputError(f"{where}: expected a mapping")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (bool, int, str) and type(value) is hint:
        return value
    raise CompassInputError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def load_yaml(cls: type[T], path: Path) -> T:
    """Read a YAML file into the dataclass; any problem is a one-line CompassInputError."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CompassInputError(f"{path}: cannot read YAML ({first})") from None
    return from_mapping(cls, data or {}, str(path))


def add_flags(parser: argparse.ArgumentParser, cls: type, help_texts: dict[str, str]) -> None:
    """One `--flag` per scalar field of the dataclass, defaulting to None (= keep the value)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in help_texts:
            continue
        hint = hints[f.name]
        scalar = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        flag = "--" + f.name.replace("_", "-")
        if scalar is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_texts[f.name]
            )
        else:
            parser.add_argument(flag, type=scalar, default=None, help=help_texts[f.name])


def override(config: T, args: argparse.Namespace) -> T:
    """The config with every flag the user actually gave replacing its field."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(config)
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(config, **given)
