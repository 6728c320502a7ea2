"""Resumable and idempotent runs: a run killed with SIGKILL and restarted loses and duplicates no
record, and the request cache means items answered before the kill cost no request again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.synth.support import ExtractiveTeacher, Slow, make_corpus

from compass_train.synth.cache import RequestCache
from compass_train.synth.cli import main
from compass_train.synth.server import TeacherServer
from compass_train.synth.sources import read_index

REPO = Path(__file__).resolve().parents[1]
PAGES = 12
SHARD = 3
# One twelve-page report, every page's figures different, so no record is a duplicate.
REPORT = {
    "fsa_long.pdf": (
        "https://www.fsa.go.jp/common/long.pdf",
        "金融庁 月次報告",
        [[("売上高", 1000 + 37 * k), ("営業費用", 600 + 11 * k)] for k in range(PAGES)],
    )
}


@pytest.fixture()
def corpus(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path, REPORT)
    assert main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)]) == 0
    capsys.readouterr()
    return pdf_dir, ExtractiveTeacher(pdf_dir, read_index(pdf_dir)[0])


def argv(pdf_dir: Path, out: Path, url: str) -> list[str]:
    return ["synth", "vqa", "--pdf-dir", str(pdf_dir), "--out", str(out), "--teacher", url]


def shard_lines(out: Path) -> list[str]:
    return [
        line
        for shard in sorted((out / "vqa").glob("shard-*.jsonl"))
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]


def test_sigkill_then_restart_loses_and_duplicates_nothing(corpus, tmp_path, capsys):
    pdf_dir, teacher = corpus
    options = ["--shard-size", str(SHARD), "--concurrency", "2"]

    # The reference: the same run, never interrupted, with its own cache.
    with TeacherServer(teacher) as server:
        assert main([*argv(pdf_dir, tmp_path / "reference", server.url), *options]) == 0
        requests_per_run = server.requests
    assert requests_per_run == 2 * PAGES  # two turns per page

    out = tmp_path / "killed"
    with TeacherServer(Slow(teacher, 0.2)) as server:
        command = [
            sys.executable,
            "-m",
            "compass_train.synth",
            *argv(pdf_dir, out, server.url),
            *options,
        ]
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (out / "vqa" / "shard-00001.jsonl").exists() and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        requests_before_kill = server.requests
    finished = sorted((out / "vqa").glob("shard-*.jsonl"))
    assert 2 <= len(finished) < PAGES // SHARD, "the run must really be cut short"
    assert not (out / "vqa" / "dataset_card.json").exists()
    stamps = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in finished}
    cache = RequestCache(out / "teacher_cache.sqlite")
    answered = len(cache)
    cache.close()
    assert 2 * SHARD * len(finished) <= answered <= requests_before_kill

    with TeacherServer(teacher) as server:
        assert main([*argv(pdf_dir, out, server.url), *options]) == 0
        # Only what the cache did not hold was asked: no finished item costs a request.
        assert server.requests == requests_per_run - answered
    assert f"resuming: {len(finished)} of 4 shards already done" in capsys.readouterr().err

    assert not list(out.rglob(".shard-*"))  # nothing half-written is left
    lines = shard_lines(out)
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == PAGES and len(set(ids)) == PAGES
    assert lines == shard_lines(tmp_path / "reference")  # the same records, in the same order
    for path in finished:  # finished shards were not rewritten
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamps[path.name]
    assert json.loads((out / "vqa" / "dataset_card.json").read_text())["total_records"] == PAGES


def test_finished_run_is_idempotent_and_other_settings_are_refused(corpus, tmp_path, capsys):
    pdf_dir, teacher = corpus
    out = tmp_path / "data"
    with TeacherServer(teacher) as server:
        assert main([*argv(pdf_dir, out, server.url), "--shard-size", "5"]) == 0
        first = server.requests
        stamps = {p: p.stat().st_mtime_ns for p in (out / "vqa").glob("shard-*.jsonl")}
        assert main([*argv(pdf_dir, out, server.url), "--shard-size", "5"]) == 0
        assert server.requests == first  # a finished run asks nothing
        assert {p: p.stat().st_mtime_ns for p in (out / "vqa").glob("shard-*.jsonl")} == stamps
        capsys.readouterr()
        assert main([*argv(pdf_dir, out, server.url), "--shard-size", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "shard_size" in err
