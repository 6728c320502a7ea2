"""`--model_args` of the `compass` model: lm-eval's own flags beside them, strict booleans, BOS."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from clitools import run_cli
from lm_eval.utils import simple_parse_args_string

from compass_eval.lm import CompassLM
from compass_eval.model_args import parse_model_args
from compass_model.errors import CompassInputError

# What lm-eval's CLI hands the constructor when neither --batch_size nor --device is given.
CLI_DEFAULT_FLAGS = {"batch_size": 1, "max_batch_size": None, "device": "cuda:0"}


@pytest.mark.parametrize(
    ("model_args", "field", "expected"),
    [
        ("phase=2", "phase", "2"),  # lm-eval reads 2 as a number; a label is text
        ("allow_pickle=1", "allow_pickle", True),
        ("add_bos_token=false", "add_bos_token", False),
        ("batch_size=auto", "batch_size", "auto"),
        ("batch_size=8", "batch_size", 8),
        ("max_length=512", "max_length", 512),
        ("dtype=bfloat16", "dtype", "bfloat16"),
    ],
)
def test_lm_evals_guesses_are_taken_back_where_the_declaration_says(model_args, field, expected):
    parsed = parse_model_args(simple_parse_args_string(model_args))
    assert getattr(parsed, field) == expected


def test_lm_evals_own_flags_arrive_as_text():
    assert parse_model_args({"batch_size": "16", "max_batch_size": "64"}).batch_size == 16


@pytest.mark.parametrize(
    ("model_args", "message"),
    [
        ("dtype=fp8", "dtype: 'fp8' is not one of float32, bfloat16, float16 — write float32 or"),
        ("max_length=0", "max_length: 0 is out of range — give a number ≥ 1"),
        ("keep_head_tokens=-1", "keep_head_tokens: -1 is out of range — give a number ≥ 0"),
        ("batch_size=0", "batch_size: 0 is out of range; 0 is not one of auto — give a number ≥ 1"),
        ("truncation=centre", "truncation: 'centre' is not one of left, right, middle"),
        ("colour=red", "unknown key 'colour' — use one of pretrained, phase, dtype"),
    ],
)
def test_bad_model_args_are_one_line_naming_the_field(model_args, message):
    with pytest.raises(CompassInputError) as failure:
        parse_model_args(simple_parse_args_string(model_args))
    assert str(failure.value).startswith(f"--model_args: {message}")


def _config(out: Path) -> dict:
    (path,) = out.rglob("results_*.json")
    return json.loads(path.read_text())["config"]


def test_device_and_batch_size_in_model_args_run_through_the_cli(tmp_path, tiny_checkpoint):
    run = run_cli(
        [
            "lm_eval",
            "--model",
            "compass",
            "--model_args",
            f"pretrained={tiny_checkpoint},device=cpu,batch_size=2",
            "--tasks",
            "compass_smoke_text",
            "--limit",
            "2",
            "--output_path",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    config = _config(tmp_path / "out")
    assert config["compass_batch_size"] == 2
    assert config["compass_device"] == "cpu"


def test_a_bad_boolean_is_one_line_and_exit_2(tmp_path, tiny_checkpoint):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"never loaded")
    run = run_cli(
        [
            "lm_eval",
            "--model",
            "compass",
            "--model_args",
            f"pretrained={pickled},allow_pickle=no",
            "--tasks",
            "compass_smoke_text",
            "--limit",
            "1",
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --model_args: allow_pickle: expected true or false, got 'no'")


def test_a_flag_wins_over_model_args_and_says_so(tiny_checkpoint, caplog):
    args = f"pretrained={tiny_checkpoint},device=cpu,batch_size=2"
    with caplog.at_level(logging.WARNING, logger="compass_eval.lm"):
        flagged = CompassLM.create_from_arg_string(args, {**CLI_DEFAULT_FLAGS, "batch_size": 5})
    assert flagged.batch_size == 5
    (warning,) = [r.getMessage() for r in caplog.records if "overrides" in r.getMessage()]
    assert "--batch_size 5" in warning and "batch_size=2" in warning
    # lm-eval's defaults stand for "no flag given": the model_args values are kept.
    unflagged = CompassLM.create_from_arg_string(args, CLI_DEFAULT_FLAGS)
    assert (unflagged.batch_size, str(unflagged.device)) == (2, "cpu")
    # A given --batch_size arrives as text: `--batch_size 1` is a flag, and wins.
    explicit_one = CompassLM.create_from_arg_string(args, {**CLI_DEFAULT_FLAGS, "batch_size": "1"})
    assert explicit_one.batch_size == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("True", True), ("false", False), ("1", True), ("0", False), ("TRUE", True)],
)
def test_booleans_accept_true_false_1_0(tiny_checkpoint, text, expected):
    lm = CompassLM.create_from_arg_string(f"pretrained={tiny_checkpoint},add_bos_token={text}")
    assert lm.add_bos_token is expected
    assert lm.get_model_info()["compass_add_bos_token"] is expected


@pytest.mark.parametrize("text", ["no", "yes", "2", "on", "0.0"])
@pytest.mark.parametrize("name", ["allow_pickle", "add_bos_token"])
def test_other_boolean_spellings_are_refused(tiny_checkpoint, name, text):
    with pytest.raises(CompassInputError, match=f"--model_args: {name}: expected true or false"):
        CompassLM.create_from_arg_string(f"pretrained={tiny_checkpoint},{name}={text}")


def test_batch_size_auto_is_accepted_and_bad_sizes_are_named(tiny_checkpoint):
    lm = CompassLM(pretrained=str(tiny_checkpoint), batch_size="auto", max_batch_size=3)
    assert lm.batch_size == "auto"
    for bad in ("0", "many", "-2"):
        with pytest.raises(
            CompassInputError, match="--model_args: batch_size: .* — .* or write auto"
        ):
            CompassLM(pretrained=str(tiny_checkpoint), batch_size=bad)
    with pytest.raises(CompassInputError, match="max_batch_size: expected int, got 'auto'"):
        CompassLM(pretrained=str(tiny_checkpoint), max_batch_size="auto")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback exists only without CUDA")
@pytest.mark.parametrize(
    ("device", "warned"), [("cuda:0", False), ("cuda:1", True), ("cuda", True)]
)
def test_cpu_fallback_warns_only_when_a_device_was_asked_for(device, warned, caplog):
    # cuda:0 is what lm-eval passes when no --device was given
    with caplog.at_level(logging.WARNING, logger="compass_eval.lm"):
        lm = CompassLM(device=device)
    assert str(lm.device) == "cpu"
    assert ("CUDA is not available" in caplog.text) == warned
