"""The one typed input layer (compass_model/typed.py): what it accepts, how it refuses, and that
recipes, policies, manifests and flags all go through it with the same message format."""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import pytest
import yaml
from clitools import REPO, VENV_BIN

from compass_model.errors import CompassInputError
from compass_model.typed import (
    add_flags,
    convert,
    from_flags,
    json_schema,
    load,
    option,
    read_mapping,
)
from compass_model.version import version_text
from compass_train.recipe import Recipe, StageSpec, load_recipe, schema_text


@dataclass(frozen=True)
class Inner:
    name: str = option(nonempty=True)
    share: float = option(0.5, ge=0.0, le=1.0)


@dataclass(frozen=True)
class Outer:
    count: int = option(ge=1, help="how many")
    mode: Literal["fast", "exact"] = option("fast")
    strict: bool = option(True)
    rate: float = option(1.0, gt=0.0)
    limit: int | None = option(None, ge=0)
    path: Path | None = option(None)
    inner: list[Inner] = option(default_factory=list)
    tags: tuple[str, ...] = option(default_factory=tuple)
    weights: dict[str, float] = option(default_factory=dict, gt=0.0)


def refusal(value: object) -> str:
    with pytest.raises(CompassInputError) as caught:
        convert(Outer, value, "f.yaml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("f.yaml: ") and " — " in message
    return message


def test_a_valid_mapping_becomes_the_typed_dataclass():
    value = convert(
        Outer,
        {
            "count": 3,
            "mode": "exact",
            "rate": "1e-3",  # YAML 1.1 reads this as text
            "path": "a/b",
            "inner": [{"name": "x"}],
            "tags": ["t"],
            "weights": {"a": 2},
        },
        "f.yaml",
    )
    assert value == Outer(
        count=3,
        mode="exact",
        rate=1e-3,
        path=Path("a/b"),
        inner=[Inner("x")],
        tags=("t",),
        weights={"a": 2.0},
    )
    assert isinstance(value.weights["a"], float) and isinstance(value.tags, tuple)


@pytest.mark.parametrize(
    "value, words",
    [
        ({"count": 1, "cuont": 2}, ["unknown key 'cuont'", "use one of count, mode"]),
        ({}, ["count: missing"]),
        ({"count": "3"}, ["count: expected int, got '3'"]),
        ({"count": True}, ["count: expected int, got True"]),
        ({"count": 2.5}, ["count: expected int"]),
        ({"count": 0}, ["count: 0 is out of range", "≥ 1"]),
        ({"count": 1, "rate": 0}, ["rate: 0.0 is out of range", "> 0"]),
        ({"count": 1, "rate": float("nan")}, ["rate: nan is not a finite number"]),
        ({"count": 1, "rate": "inf"}, ["rate: 'inf' is not a finite number"]),
        ({"count": 1, "rate": False}, ["rate: expected float, got False"]),
        ({"count": 1, "mode": "quick"}, ["mode: 'quick' is not one of fast, exact"]),
        ({"count": 1, "strict": "no"}, ["strict: expected true or false, got 'no'"]),
        ({"count": 1, "strict": 1}, ["strict: expected true or false, got 1"]),
        ({"count": 1, "limit": -1}, ["limit: -1 is out of range"]),
        ({"count": 1, "path": 3}, ["path: expected str, got 3"]),
        ({"count": 1, "inner": {"name": "x"}}, ["inner: expected a list"]),
        ({"count": 1, "inner": [{"name": ""}]}, ["inner[0].name: is empty"]),
        ({"count": 1, "inner": [{"name": "a", "share": 2}]}, ["inner[a].share: 2.0 is out"]),
        ({"count": 1, "inner": [{"name": "a", "sahre": 2}]}, ["inner[a]: unknown key 'sahre'"]),
        ({"count": 1, "weights": {"a": -1}}, ["weights.a: -1.0 is out of range"]),
        ({"count": 1, "weights": [1]}, ["weights: expected a mapping"]),
        ([1, 2], ["expected a mapping, got [1, 2]"]),
    ],
)
def test_each_problem_is_one_line_naming_the_file_and_field(value, words):
    message = refusal(value)
    for word in words:
        assert word in message, message


def test_files_that_cannot_be_read_are_one_line(tmp_path):
    cases = {
        "missing.yaml": (None, "does not exist"),
        "binary.yaml": (b"a: \xff\xfe\n", "is not UTF-8 text"),
        "broken.yaml": (b"a: 1\nb: [2\n", "not valid YAML at line 3"),
        "list.yaml": (b"- 1\n", "holds a list"),
    }
    for name, (content, words) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(CompassInputError, match="policy .*" + words):
            read_mapping(tmp_path / name, "policy")
    (tmp_path / "empty.yaml").write_text("")
    assert read_mapping(tmp_path / "empty.yaml", "policy") == {}
    (tmp_path / "ok.yaml").write_text("count: 2\ninner: [{name: a}]\n")
    assert load(Outer, tmp_path / "ok.yaml", "settings").inner == [Inner("a")]


def test_flags_come_from_the_fields_and_are_checked_like_files():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_flags(parser, Outer)
    assert parser.parse_args(["--count", "2", "--no-strict"]).strict is False
    with pytest.raises(SystemExit):  # --count has no default, so the flag is required
        parser.parse_args([])
    given = from_flags(Outer, parser.parse_args(["--count", "2", "--rate", "3"]))
    assert given == Outer(count=2, rate=3.0)
    with pytest.raises(CompassInputError, match=r"^command line: --count: 0 is out of range"):
        from_flags(Outer, parser.parse_args(["--count", "0"]))
    with pytest.raises(CompassInputError, match="--rate: nan is not a finite number"):
        from_flags(Outer, parser.parse_args(["--count", "1", "--rate", "nan"]))
    base = Outer(count=5, mode="exact")
    assert from_flags(Outer, parser.parse_args(["--count", "1"]), base) == Outer(1, "exact")


def test_only_the_named_flags_are_added_with_their_help():
    parser = argparse.ArgumentParser()
    add_flags(parser, Outer, {"rate": "the rate"})
    assert [a.dest for a in parser._actions if a.dest != "help"] == ["rate"]
    assert from_flags(Outer, parser.parse_args([]), Outer(count=4)) == Outer(count=4)


def _keys_outside_schema(value: object, schema: dict, path: str = "") -> list[str]:
    """Keys of `value` that the schema does not declare (it forbids additional properties)."""
    if "anyOf" in schema:
        schema = schema["anyOf"][0]
    if isinstance(value, dict) and "properties" in schema:
        found = [f"{path}.{k}" for k in value if k not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                found += _keys_outside_schema(item, schema["properties"][key], f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [
            miss for item in value for miss in _keys_outside_schema(item, schema["items"], path)
        ]
    return []


def test_the_recipe_schema_states_types_ranges_and_the_shipped_recipes_fit_it():
    schema = json.loads(schema_text())
    stage = schema["properties"]["phases"]["items"]["properties"]["stages"]["items"]
    assert stage["additionalProperties"] is False
    assert set(stage["properties"]) == set(StageSpec.__dataclass_fields__)
    assert stage["required"] == ["name", "data"]
    assert stage["properties"]["save_every"] == {
        "type": "integer",
        "minimum": 1,
        "description": "optimizer steps between resumable saves",
        "default": 50,
    }
    assert stage["properties"]["lr"]["exclusiveMinimum"] == 0
    assert stage["properties"]["max_steps"]["anyOf"][1] == {"type": "null"}
    assert schema["properties"]["mixed_precision"]["enum"] == ["fp32", "bf16", "fp16"]
    assert set(schema["properties"]["stage_defaults"]["properties"]) == set(stage["properties"])
    assert json_schema(Recipe)["required"] == ["name", "phases"]
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        assert _keys_outside_schema(raw, schema) == [], recipe
    assert _keys_outside_schema({"phases": [{"stages": [{"lr_rate": 1}]}]}, schema) == [
        ".phases.stages.lr_rate"
    ]


@pytest.mark.parametrize(
    "override, words",
    [
        ("stages.save_every=0", "phases[p1].stages[s1].save_every: 0 is out of range"),
        ("stages.max_steps=0", "max_steps: 0 is out of range"),
        ("stages.warmup_ratio=-5", "warmup_ratio: -5.0 is out of range"),
        ("stages.lr=-1", "lr: -1.0 is out of range"),
        ("stages.epochs=-1", "epochs: -1.0 is out of range"),
        ("stages.max_length=0", "max_length: 0 is out of range"),
        ("seed=-1", "seed: -1 is out of range"),
        ("seed=[", "--set seed=[: seed: VALUE is not valid YAML"),
        ("model.preset=huge", "model.preset: 'huge' is not a preset — use one of paper, tiny"),
        ("mixed_precision=no", "mixed_precision: False is not one of fp32, bf16, fp16"),
        ("p3.s1.lora.dropout=1", "phases[p3].stages[s1].lora.dropout: 1.0 is out of range"),
        ("p9.s1.lr=1", "recipe"),  # an unknown phase is a top-level key named p9
    ],
)
def test_recipe_values_are_range_checked_before_training(override, words):
    with pytest.raises(CompassInputError) as caught:
        load_recipe(REPO / "tests" / "fixtures" / "train" / "chain.yaml", [override])
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_version_names_compass_lm_eval_and_torch_from_the_installed_command():
    text = version_text()
    for name in ("lm-eval", "torch"):
        assert f"{name} {metadata.version(name)}" in text
    assert text.startswith(f"compass {metadata.version('compass-eval')} (")
    result = subprocess.run(
        [str(VENV_BIN / "compass-gate"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, text + "\n", "")
