"""The command line as a user runs it: the in-process teacher from a flag, the loopback server as
its own process, and the example source manifests kept valid."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.synth.support import make_corpus

from compass_train.synth.cli import main, register, run
from compass_train.synth.distill import load_sources
from compass_train.synth.sources import load_manifest
from compass_train.synth.teacher import OpenAIChatClient, TeacherRequest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).parent / "fixtures" / "synth"


def test_in_process_teacher_from_the_command_line(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)]) == 0
    out = tmp_path / "data"
    argv = ["synth", "ocr", "--pdf-dir", str(pdf_dir), "--out", str(out), "--teacher", "tiny"]
    assert main([*argv, "--max-tokens", "8", "--concurrency", "2"]) == 0
    card = json.loads((out / "ocr" / "dataset_card.json").read_text(encoding="utf-8"))
    assert card["settings"]["teacher_model"] == "tiny" and card["total_rejects"] == 4
    assert "4 teacher requests sent" in capsys.readouterr().out


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)]) == 0
    capsys.readouterr()
    argv = ["synth", "ocr", "--pdf-dir", str(pdf_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--teacher", str(tmp_path / "no-such-checkpoint")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err


def test_unreachable_teacher_is_one_line_and_exit_2(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)]) == 0
    capsys.readouterr()
    argv = ["synth", "vqa", "--pdf-dir", str(pdf_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--teacher", "http://127.0.0.1:9/v1", "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not reachable" in err


def test_inspect_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a dataset folder" in capsys.readouterr().err


@pytest.mark.slow
def test_server_module_serves_the_tiny_model(tmp_path):
    command = [
        sys.executable,
        "-m",
        "compass_train.synth.server",
        "--teacher",
        "tiny",
        "--port",
        "0",
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # "serving tiny at http://127.0.0.1:PORT/v1"
        url = line.split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        client = OpenAIChatClient(url, "tiny", timeout=30)
        assert client.served_models() == ["tiny"]
        answer = client.complete(
            TeacherRequest([{"role": "user", "content": "こんにちは"}], max_tokens=4)
        )
        assert isinstance(answer, str)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_example_manifests_are_valid():
    manifest = load_manifest(EXAMPLES / "sources.example.yaml")
    assert {source.licence for source in manifest.sources} == {"PDL-1.0"}
    assert manifest.source_for("https://www.fsa.go.jp/news/r6/sonota/x.pdf").id == "fsa"
    assert manifest.source_for("https://www.mof.go.jp/policy/budget/x.pdf").id == "mof"
    assert manifest.source_for("https://www5.cao.go.jp/keizai3/x.pdf").id == "cao"
    sources = load_sources(EXAMPLES / "math_sources.example.yaml")
    assert [s.name for s in sources][:2] == ["mgsm_ja", "gsm8k"]
    assert all(source.licence for source in sources)


def test_verbs_register_into_another_command_line(tmp_path, capsys):
    # How `compass-data` (which also has status/fetch/import) takes these verbs in.
    parser = argparse.ArgumentParser(prog="compass-data")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status")
    register(commands)
    assert run(parser.parse_args(["inspect", str(tmp_path)])) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path} is not a dataset folder")
    assert parser.parse_args(["status"]).command == "status"
