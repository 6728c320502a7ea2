"""The one output helper, under real kills and real concurrent processes: a SIGKILL at any moment
leaves a whole old or whole new version at the target, a second writer stops with one line, what
kills leave behind is cleared on the next run, and modes follow the umask."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from compass_model import atomic
from compass_model.errors import CompassInputError

FILES = 40

# Rewrites the target forever, each version a folder of FILES files that all hold its number.
# With "aside", the file system is taken to have no atomic exchange (the rename-aside path).
# Without fsync (power loss is not what this tests) most of each cycle is spent replacing, where
# a kill can do harm: swapping in the new version and removing the old.
WRITER = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from compass_model import atomic

    target, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "aside":
        atomic._exchange = lambda first, second: False
    version = int((target / "0").read_text()) if target.is_dir() else 0
    while True:
        version += 1
        with atomic.staged_directory(target, durable=False) as staging:
            for index in range({FILES}):
                (staging / str(index)).write_text(str(version) * 200)
    """
)


def whole_version(target: Path) -> int:
    """The version a target holds, asserting every file is there and from that same version."""
    contents = {(target / str(index)).read_text() for index in range(FILES)}
    assert {path.name for path in target.iterdir()} == {str(i) for i in range(FILES)}
    assert len(contents) == 1, "files from different versions"
    text = contents.pop()
    assert len(text) % 200 == 0 and text == text[: len(text) // 200] * 200
    return int(text[: len(text) // 200])


def leftovers(folder: Path, target: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != target)


@pytest.mark.parametrize("mode", ["exchange", "aside"])
def test_sigkill_at_random_moments_never_loses_the_target(tmp_path, mode):
    target = tmp_path / "out"
    with atomic.staged_directory(target) as staging:
        for index in range(FILES):
            (staging / str(index)).write_text("0" * 200)
    rng = random.Random(14)
    versions = [0]
    iterations = 40
    for _ in range(iterations):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(target), mode])
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        if mode == "exchange":
            # The swap is one step: the target is whole even before anyone cleans up.
            versions.append(whole_version(target))
        else:
            # Renamed aside, the old version is still on disk; the next run puts it back.
            assert target.is_dir() or list(tmp_path.glob(".out.old-*"))
            atomic.recover(target)
            versions.append(whole_version(target))
    assert versions == sorted(versions) and versions[-1] > iterations // 2
    atomic.recover(target)
    assert leftovers(tmp_path, target) in ([], [".out.lock"])  # a killed holder's lock stays


FILE_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from compass_model import atomic

    target = Path(sys.argv[1])
    version = int(target.read_bytes()[:8])
    while True:
        version += 1
        atomic.write_bytes(target, b"%08d" % version * 50_000, durable=False)
    """
)


def test_sigkill_while_writing_a_file_leaves_it_whole(tmp_path):
    target = tmp_path / "shard.jsonl"
    atomic.write_bytes(target, b"%08d" % 0 * 50_000)
    rng = random.Random(15)
    for _ in range(30):
        child = subprocess.Popen([sys.executable, "-c", FILE_WRITER, str(target)])
        time.sleep(rng.uniform(0.05, 0.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        data = target.read_bytes()
        assert len(data) == 400_000 and data == data[:8] * 50_000
    atomic.write_bytes(target, b"done")  # the next write clears what the kills left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.jsonl"]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from compass_model import atomic

    with atomic.staged_directory(Path(sys.argv[1])) as staging:
        (staging / "winner").write_text(sys.argv[2])
        print("inside", flush=True)
        sys.stdin.readline()
    """
)

SECOND = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from compass_model import atomic
    from compass_model.errors import CompassInputError

    try:
        with atomic.staged_directory(Path(sys.argv[1])) as staging:
            (staging / "winner").write_text(sys.argv[2])
    except CompassInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    """
)


def test_second_writer_stops_with_one_line_and_the_first_wins(tmp_path):
    target = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target), "first"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline() == "inside\n"
        second = subprocess.run(
            [sys.executable, "-c", SECOND, str(target), "second"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        first.communicate("\n", timeout=60)
    assert first.returncode == 0
    assert second.returncode == 2
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and "another process is writing it" in lines[0]
    assert (target / "winner").read_text() == "first"
    assert leftovers(tmp_path, target) == []


def test_lock_is_reentrant_within_a_process_and_freed_after(tmp_path):
    target = tmp_path / "out"
    with atomic.output_lock(target), atomic.staged_directory(target) as staging:
        (staging / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    assert leftovers(tmp_path, target) == []
    with atomic.staged_directory(target) as staging:  # nobody holds it any more
        (staging / "a").write_text("2")
    assert (target / "a").read_text() == "2"


def test_a_failed_block_keeps_the_old_version(tmp_path):
    target = tmp_path / "out"
    with atomic.staged_directory(target) as staging:
        (staging / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic.staged_directory(target) as staging:
        (staging / "a").write_text("new")
        raise RuntimeError("cut short")
    assert (target / "a").read_text() == "old"
    assert leftovers(tmp_path, target) == []


def test_leftovers_of_earlier_kills_are_cleared_and_a_lost_target_restored(tmp_path):
    target = tmp_path / "out"
    aside = tmp_path / ".out.old-dead"
    aside.mkdir()
    (aside / "a").write_text("previous")
    (tmp_path / ".out.staging-dead").mkdir()
    (tmp_path / ".out.staging-dead" / "half").write_text("x")
    atomic.recover(target)
    assert (target / "a").read_text() == "previous"
    assert leftovers(tmp_path, target) == []
    (tmp_path / ".out.staging-again").mkdir()
    with atomic.staged_directory(target) as staging:
        (staging / "a").write_text("next")
    assert (target / "a").read_text() == "next"
    assert leftovers(tmp_path, target) == []


def test_abandoned_partial_files_go_but_a_live_writers_stays(tmp_path):
    path = tmp_path / "card.json"
    abandoned = tmp_path / ".card.json.partial-dead"
    abandoned.write_text("half")
    live = tmp_path / ".card.json.partial-live"
    live.write_text("writing")
    handle = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        atomic.write_json(path, {"a": 1})
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "card.json"]
    finally:
        os.close(handle)
    assert path.read_text() == '{\n  "a": 1\n}\n'


def test_foreign_folder_is_refused_and_left_as_it_was(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    refused = pytest.raises(CompassInputError, match="not an earlier output")
    with refused, atomic.staged_directory(target, marker=".made-here") as staging:
        (staging / "a").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    assert leftovers(tmp_path, target) == []
    (target / "mine.txt").unlink()
    with atomic.staged_directory(target, marker=".made-here") as staging:
        (staging / "a").write_text("x")
    with atomic.staged_directory(target, marker=".made-here") as staging:  # its own output
        (staging / "a").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == [".made-here", "a"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_modes_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        target = tmp_path / "out"
        with atomic.staged_directory(target) as staging:
            (staging / "sub").mkdir()
            (staging / "sub" / "f").write_text("x")
        atomic.write_text(tmp_path / "file.txt", "x")
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(target) == 0o777 & ~umask
    assert mode(target / "sub") == 0o777 & ~umask
    assert mode(target / "sub" / "f") == 0o666 & ~umask
    assert mode(tmp_path / "file.txt") == 0o666 & ~umask


def test_an_output_under_a_file_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with (
        pytest.raises(CompassInputError, match="cannot write in"),
        atomic.staged_directory(blocker / "out"),
    ):
        pass
    with pytest.raises(CompassInputError, match="cannot write in"):
        atomic.write_text(blocker / "card.json", "{}")
    assert blocker.read_text() == "x"
