"""The request cache: a teacher's answer is stored under (model, prompt, image hash), so a rerun or
a resumed run asks the teacher nothing it has already answered. SQLite: safe under SIGKILL."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path

from compass_train.synth.teacher import Teacher, TeacherRequest


class RequestCache:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a killed process loses nothing committed; only a power cut may lose the last
        # answers, which are then asked again.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, text TEXT)"
        )

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, model: str, text: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, model, text) VALUES (?, ?, ?)",
                (key, model, text),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedTeacher:
    """Any teacher behind the cache; only successful answers are kept (a failure is retried later).
    Identical requests in flight at once are asked once: the others wait for that answer.
    `max_tokens` caps every answer's length (the templates ask for what a real teacher needs)."""

    def __init__(
        self, teacher: Teacher, cache: RequestCache, max_tokens: int | None = None
    ) -> None:
        self.teacher = teacher
        self.cache = cache
        self.max_tokens = max_tokens
        self.model = teacher.model
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._in_flight: dict[str, threading.Event] = {}

    def complete(self, request: TeacherRequest) -> str:
        if self.max_tokens is not None and request.max_tokens > self.max_tokens:
            request = dataclasses.replace(request, max_tokens=self.max_tokens)
        key = request.cache_key(self.model)
        while True:
            cached = self.cache.get(key)
            with self._lock:
                if cached is not None:
                    self.hits += 1
                    return cached
                asking = self._in_flight.get(key)
                if asking is None:
                    self._in_flight[key] = threading.Event()
                    self.misses += 1
                    break
            asking.wait()  # then the cache has it, or that request failed and this one tries
        try:
            text = self.teacher.complete(request)
            self.cache.put(key, self.model, text)
            return text
        finally:
            with self._lock:
                self._in_flight.pop(key).set()
