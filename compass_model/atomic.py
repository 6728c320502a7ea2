"""Every output Compass writes goes through here, so that a kill at any moment leaves the old
version or the new one, never neither, and two writers of one output cannot interleave.

A directory is built in a hidden sibling, flushed to disk, then swapped in with one atomic
exchange (or, where the file system cannot exchange, the old is renamed aside before the new is
renamed in, and the next run puts it back if a kill came in between). A file is written beside
its target and renamed over it. Modes are the usual 0777/0666 less the umask.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import glob
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compass_model.errors import CompassInputError

STAGING = "staging-"
ASIDE = "old-"
PARTIAL = "partial-"

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, holders)
_held_guard = threading.Lock()


def _lock_file(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(target.parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as error:
        raise CompassInputError(
            f"{target}: cannot write in {target.parent} ({error.strerror or error}); "
            "choose a folder you can write to"
        ) from None


def _acquire(lock: Path, target: Path) -> int:
    """Locks the file now at `lock`: one unlinked by its last holder meanwhile is a stale lock."""
    while True:
        handle = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise CompassInputError(
                f"{target}: another process is writing it (it holds {lock}); "
                "wait for it to finish or choose another output"
            ) from None
        try:
            if os.stat(lock).st_ino == os.fstat(handle).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)


@contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Holds `.<name>.lock` beside `target` (fcntl.flock: a dead process holds nothing) and
    removes it afterwards. Re-entrant within a process, so a command may hold it around helpers
    that take it too."""
    target = Path(target)
    _make_parent(target)
    lock = _lock_file(target).resolve()
    with _held_guard:
        handle, holders = _held.get(lock) or (_acquire(lock, target), 0)
        _held[lock] = (handle, holders + 1)
    try:
        yield
    finally:
        with _held_guard:
            handle, holders = _held.pop(lock)
            if holders > 1:
                _held[lock] = (handle, holders - 1)
            else:
                lock.unlink(missing_ok=True)
                os.close(handle)


def _fsync_path(path: Path, directory: bool = False) -> None:
    handle = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync_path(Path(folder, name))
        _fsync_path(Path(folder), directory=True)


def _leftovers(target: Path, kind: str) -> list[Path]:
    return sorted(target.parent.glob(glob.escape(f".{target.name}.{kind}") + "*"))


def recover(target: Path) -> None:
    """What an earlier kill left beside `target`: an old version renamed aside while the target
    is missing goes back in place; half-built or superseded copies are removed. Call it holding
    the output's lock (staged_directory does)."""
    asides = _leftovers(target, ASIDE)
    if asides and not target.exists():
        asides.pop().rename(target)
    for leftover in [*asides, *_leftovers(target, STAGING)]:
        shutil.rmtree(leftover, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two paths in one step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE):
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
            return False
        raise OSError(code, os.strerror(code), str(first))
    return True


def _replace_directory(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)  # it now holds the old version
    else:
        aside = target.with_name(staging.name.replace(STAGING, ASIDE, 1))
        target.rename(aside)
        staging.rename(target)
        shutil.rmtree(aside)


def check_replaceable(target: Path, marker: str) -> None:
    """Only a missing or empty folder, or an earlier output of the same command, may be replaced."""
    if target.is_dir() and any(target.iterdir()) and not (target / marker).is_file():
        raise CompassInputError(
            f"{target} is not empty and is not an earlier output of this command "
            f"(no {marker} in it): give a new or empty folder"
        )


@contextmanager
def staged_directory(
    target: Path, marker: str | None = None, durable: bool = True
) -> Iterator[Path]:
    """Yields an empty folder beside `target` that replaces it whole when the block succeeds; on
    any failure `target` is kept as it was. Holds the output's lock throughout and first clears
    what earlier kills left. With `marker`, an existing `target` is only replaced if it is empty
    or holds that file (an earlier output of the same command), and the new one gets it too."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CompassInputError(f"{target} is a file: give a folder")
    with output_lock(target):
        recover(target)
        if marker is not None:
            check_replaceable(target, marker)
        staging = target.with_name(f".{target.name}.{STAGING}{secrets.token_hex(4)}")
        staging.mkdir(0o777)
        try:
            yield staging
            if marker is not None and not (staging / marker).exists():
                (staging / marker).write_text("", encoding="utf-8")  # unless the block wrote one
            if durable:
                _fsync_tree(staging)
            _replace_directory(staging, target)
            if durable:
                _fsync_path(target.parent, directory=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _remove_abandoned_partials(path: Path) -> None:
    """A partial file whose writer is alive holds a flock on it; one we can lock was abandoned."""
    for partial in _leftovers(path, PARTIAL):
        try:
            handle = os.open(partial, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            partial.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(handle)


@contextmanager
def staged_file(path: Path, durable: bool = True) -> Iterator[Path]:
    """Yields a partial file beside `path` for any writer (torch.save, a PNG encoder); it
    replaces `path` when the block succeeds. Its flock tells later runs that it is in use."""
    path = Path(path)
    _make_parent(path)
    _remove_abandoned_partials(path)
    partial = path.with_name(f".{path.name}.{PARTIAL}{secrets.token_hex(4)}")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield partial
        if durable:
            os.fsync(handle)  # the same file, whichever descriptor wrote it
        os.replace(partial, path)
        if durable:
            _fsync_path(path.parent, directory=True)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.close(handle)


def write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """`durable` also survives power loss (fsync); a rename alone already survives a killed process."""
    with staged_file(path, durable) as partial:
        partial.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
