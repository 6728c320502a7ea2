"""The one converter from what a user writes (a YAML or JSON file, `--set KEY=VALUE`, a flag) to a
typed, frozen dataclass: declared types, `Literal` choices, unions (the first that fits), ranges
and non-emptiness from field metadata (`option`), unknown keys refused. Every problem is one
CompassInputError line, `FILE: FIELD: what is wrong — what to do`, raised before anything is
written.

The same declarations give the command-line flags (`add_flags`, `from_flags`) and a JSON schema
for editors (`json_schema`), so a field's type, range and help are stated once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from compass_model.errors import CompassInputError

T = TypeVar("T")
_RANGE = "compass_range"
_NONEMPTY = "compass_nonempty"
_HELP = "help"
MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Range:
    """Bounds of a number (or of every number in a list or mapping field)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: float) -> bool:
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def text(self) -> str:
        parts = [
            f"{sign} {bound:g}"
            for sign, bound in (("≥", self.ge), (">", self.gt), ("≤", self.le), ("<", self.lt))
            if bound is not None
        ]
        return " and ".join(parts)


def option(
    default: Any = MISSING,
    *,
    help: str = "",
    default_factory: Any = MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    nonempty: bool = False,
) -> Any:
    """A dataclass field with its help text, its range and whether it may be empty."""
    bounds = Range(ge, gt, le, lt)
    metadata = {_HELP: help, _NONEMPTY: nonempty}
    if bounds != Range():
        metadata[_RANGE] = bounds
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


class _Problem(Exception):
    def __init__(self, path: str, what: str, fix: str) -> None:
        super().__init__(path, what, fix)
        self.path, self.what, self.fix = path, what, fix


def input_error(where: str, path: str, what: str, fix: str) -> CompassInputError:
    """The one message format; `path` may be empty for a problem with the whole file."""
    return CompassInputError(f"{where}: {path + ': ' if path else ''}{what} — {fix}")


def convert(kind: type[T], value: object, where: str) -> T:
    """`value` (parsed YAML/JSON) as `kind`; `where` names the file (or `--set`) in messages."""
    try:
        return _convert(kind, value, "", {})
    except _Problem as problem:
        raise input_error(where, problem.path, problem.what, problem.fix) from None


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML (or JSON) file holding a mapping; an empty file is an empty mapping."""
    path = Path(path)
    where = f"{what} {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise input_error(where, "", "does not exist", "check the path") from None
    except IsADirectoryError:
        raise input_error(where, "", "is a folder", "give the file") from None
    except UnicodeDecodeError:
        raise input_error(where, "", "is not UTF-8 text", "save it as UTF-8") from None
    except OSError as error:
        raise input_error(
            where, "", f"cannot be read ({error.strerror})", "fix its permissions"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise input_error(where, "", f"not valid YAML{at} ({problem})", "fix the syntax") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise input_error(where, "", f"holds a {_kind_name(raw)}", "write a mapping of keys")
    return raw


def load(kind: type[T], path: str | Path, what: str) -> T:
    """The file read and converted in one step."""
    return convert(kind, read_mapping(path, what), f"{what} {path}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind_name(value: object) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _label(item: object, index: int) -> str:
    """A list item is named by its `name` (or `id`) where it has one, else by its position."""
    if isinstance(item, dict):
        for key in ("name", "id"):
            if isinstance(item.get(key), str) and item[key]:
                return item[key]
    return str(index)


def _required(spec: dataclasses.Field) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


def _convert(kind: Any, value: object, path: str, metadata: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return value if isinstance(value, kind) else _dataclass(kind, value, path)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = []
        for inner in [arg for arg in args if arg is not type(None)]:
            try:
                return _convert(inner, value, path, metadata)
            except _Problem as problem:
                problems.append(problem)
        if len(problems) == 1:
            raise problems[0]
        raise _Problem(
            path, "; ".join(p.what for p in problems), " or ".join(p.fix for p in problems)
        )
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _Problem(path, f"expected a list, got {value!r}", "write [item, ...]")
        if metadata.get(_NONEMPTY) and not value:
            raise _Problem(path, "is empty", "give at least one item")
        items = [
            _convert(args[0], item, f"{path}[{_label(item, i)}]", metadata)
            for i, item in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _Problem(path, f"expected a mapping, got {value!r}", "write {key: value, ...}")
        return {
            str(k): _convert(args[1], v, _join(path, str(k)), metadata) for k, v in value.items()
        }
    if origin is Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            words = [str(arg) for arg in args]
            raise _Problem(
                path, f"{value!r} is not one of {', '.join(words)}", f"write {' or '.join(words)}"
            )
        return value
    return _scalar(kind, value, path, metadata)


def _scalar(kind: type, value: object, path: str, metadata: typing.Mapping[str, Any]) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise _Problem(path, f"expected true or false, got {value!r}", "write true or false")
    if kind in (int, float):
        number = _number(kind, value, path)
        bounds = metadata.get(_RANGE)
        if bounds is not None and not bounds.admits(number):
            raise _Problem(path, f"{number!r} is out of range", f"give a number {bounds.text()}")
        return number
    if kind in (str, Path):
        if not isinstance(value, str | Path):
            raise _Problem(path, f"expected str, got {value!r}", "write text (quote it in YAML)")
        if metadata.get(_NONEMPTY) and not str(value):
            raise _Problem(path, "is empty", "give a value")
        return kind(value)
    raise TypeError(f"compass_model.typed cannot convert to {kind!r}")  # a declaration's bug


def _number(kind: type, value: object, path: str) -> int | float:
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Problem(path, f"expected int, got {value!r}", "write a whole number")
    number = value
    if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as text
        with contextlib.suppress(ValueError):
            number = float(value)
    if not isinstance(number, int | float) or isinstance(number, bool):
        raise _Problem(path, f"expected float, got {value!r}", "write a number, e.g. 0.5")
    if not math.isfinite(number):
        raise _Problem(path, f"{value!r} is not a finite number", "write a finite number")
    return float(number)


def _dataclass(kind: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise _Problem(path, f"expected a mapping, got {value!r}", "write key: value lines")
    fields = dataclasses.fields(kind)
    names = [spec.name for spec in fields]
    unknown = [key for key in value if key not in names]
    if unknown:
        raise _Problem(path, f"unknown key {unknown[0]!r}", f"use one of {', '.join(names)}")
    missing = [spec.name for spec in fields if _required(spec) and spec.name not in value]
    if missing:
        raise _Problem(_join(path, missing[0]), "missing", "add it: it has no default")
    hints = typing.get_type_hints(kind)
    converted = {
        spec.name: _convert(
            hints[spec.name], value[spec.name], _join(path, spec.name), spec.metadata
        )
        for spec in fields
        if spec.name in value
    }
    return kind(**converted)


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _flag_scalar(hint: Any) -> Any:
    """The one scalar type a flag of this field holds, or None for containers and unions of
    several types (files only)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        choices = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(choices) > 1:
            return None
        (hint,) = choices
    if hint in (bool, int, float, str, Path) or typing.get_origin(hint) is Literal:
        return hint
    return None


def add_flags(
    parser: argparse.ArgumentParser, kind: type, help_texts: dict[str, str] | None = None
) -> None:
    """One `--flag` per scalar field (only those in `help_texts` when given, with that help;
    otherwise every one, with its metadata's help). Flags default to None, meaning "not given"."""
    hints = typing.get_type_hints(kind)
    for spec in dataclasses.fields(kind):
        scalar = _flag_scalar(hints[spec.name])
        if scalar is None or (help_texts is not None and spec.name not in help_texts):
            continue
        text = help_texts[spec.name] if help_texts is not None else spec.metadata.get(_HELP, "")
        if help_texts is None and not _required(spec) and spec.default not in (None, MISSING):
            text += f" (default: {spec.default})"
        if scalar is bool:
            parser.add_argument(
                flag_name(spec.name),
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
            continue
        literal = typing.get_origin(scalar) is Literal
        parser.add_argument(
            flag_name(spec.name),
            dest=spec.name,
            type=str if literal else scalar,
            choices=typing.get_args(scalar) if literal else None,
            default=None,
            required=help_texts is None and _required(spec),
            help=text,
        )


def from_flags(kind: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """The flags the user gave, checked like a file's values (ranges included), over `base`
    (or over the dataclass's defaults)."""
    hints = typing.get_type_hints(kind)
    given = {}
    try:
        for spec in dataclasses.fields(kind):
            value = getattr(args, spec.name, None)
            if value is not None:
                given[spec.name] = _convert(
                    hints[spec.name], value, flag_name(spec.name), spec.metadata
                )
    except _Problem as problem:
        raise input_error("command line", problem.path, problem.what, problem.fix) from None
    return dataclasses.replace(base, **given) if base is not None else kind(**given)


def json_schema(kind: Any, metadata: typing.Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a declared type, for editors and `schema` commands."""
    metadata = metadata or {}
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return _object_schema(kind)
    if origin in (Union, types.UnionType):
        choices = [json_schema(arg, metadata) for arg in args if arg is not type(None)]
        return {"anyOf": choices + ([{"type": "null"}] if type(None) in args else [])}
    if origin in (list, tuple):
        schema = {"type": "array", "items": json_schema(args[0], metadata)}
        return {**schema, "minItems": 1} if metadata.get(_NONEMPTY) else schema
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1], metadata)}
    if origin is Literal:
        return {"enum": list(args)}
    if kind is bool:
        return {"type": "boolean"}
    if kind in (int, float):
        schema = {"type": "integer" if kind is int else "number"}
        bounds = metadata.get(_RANGE)
        if bounds is not None:
            for key, bound in (
                ("minimum", bounds.ge),
                ("exclusiveMinimum", bounds.gt),
                ("maximum", bounds.le),
                ("exclusiveMaximum", bounds.lt),
            ):
                if bound is not None:
                    schema[key] = bound
        return schema
    schema = {"type": "string"}
    return {**schema, "minLength": 1} if metadata.get(_NONEMPTY) else schema


def _object_schema(kind: type) -> dict[str, Any]:
    hints = typing.get_type_hints(kind)
    properties = {}
    for spec in dataclasses.fields(kind):
        schema = json_schema(hints[spec.name], spec.metadata)
        if spec.metadata.get(_HELP):
            schema["description"] = spec.metadata[_HELP]
        if spec.default is not MISSING and isinstance(spec.default, str | int | float | bool):
            schema["default"] = spec.default
        properties[spec.name] = schema
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [spec.name for spec in dataclasses.fields(kind) if _required(spec)]
    if required:
        schema["required"] = required
    if kind.__doc__ and not kind.__doc__.startswith(kind.__name__ + "("):
        schema["description"] = " ".join(kind.__doc__.split())
    return schema
