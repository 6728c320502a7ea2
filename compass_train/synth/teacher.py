"""Teacher backends behind one call, `complete(request) -> text`: an OpenAI-compatible
chat-completions client (vLLM, SGLang and other servers; images as data URLs) fit for a remote
server at high concurrency. The in-process backend is in `inprocess.py`, the cache in `cache.py`."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpcore
from PIL import Image

from compass_model.errors import CompassInputError


@dataclass(frozen=True)
class TeacherRequest:
    """A chat in Compass's format: `{"type": "image"}` parts take `images` (PNG bytes) in order."""

    messages: list[dict[str, Any]]
    images: list[bytes] = field(default_factory=list)
    max_tokens: int = 1024
    temperature: float = 0.0

    def cache_key(self, model: str) -> str:
        """(model, prompt, image hashes): the same question about the same page is asked once."""
        identity = {
            "model": model,
            "messages": self.messages,
            "images": [hashlib.sha256(image).hexdigest() for image in self.images],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        canonical = json.dumps(identity, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Teacher(Protocol):
    model: str

    def complete(self, request: TeacherRequest) -> str: ...


class TeacherError(Exception):
    """One request failed for good (after the retry budget): the item is skipped, counted by reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TeacherConfigError(CompassInputError):
    """The teacher cannot serve this run at all (unreachable, unknown model, no access)."""


def _data_url(image: bytes) -> str:
    with Image.open(io.BytesIO(image)) as opened:
        kind = Image.MIME.get(opened.format or "", "image/png")
    return f"data:{kind};base64,{base64.b64encode(image).decode('ascii')}"


def to_openai_messages(request: TeacherRequest) -> list[dict[str, Any]]:
    images = iter(request.images)
    messages = []
    for message in request.messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [
                {"type": "image_url", "image_url": {"url": _data_url(next(images))}}
                if part["type"] == "image"
                else {"type": "text", "text": part["text"]}
                for part in content
            ]
        messages.append({"role": message["role"], "content": content})
    return messages


def from_openai_messages(
    messages: list[dict[str, Any]], max_tokens: int, temperature: float
) -> TeacherRequest:
    """The inverse, for a server: data-URL images become bytes again (remote URLs are refused)."""
    converted, images = [], []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            parts = []
            for part in content:
                if part["type"] == "image_url":
                    url = part["image_url"]["url"]
                    if not url.startswith("data:") or ";base64," not in url:
                        raise ValueError("only base64 data URLs are accepted for images")
                    images.append(base64.b64decode(url.split(";base64,", 1)[1]))
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            content = parts
        converted.append({"role": message["role"], "content": content})
    return TeacherRequest(converted, images, max_tokens, temperature)


# Worth another try: the server is busy or failing for now. 401/403/404 mean the run is misconfigured.
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
_FATAL = {401, 403, 404}


class _Deadline(threading.local):
    """When the request now running on this thread must be over (each worker runs one at a time)."""

    at: float | None = None

    def remaining(self, timeout: float | None) -> float | None:
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Every read and write waits at most until the request's deadline, so a server that sends a
    byte at a time cannot stretch one request past it (a per-read timeout would never fire)."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.remaining(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        secure = self._stream.start_tls(
            ssl_context, server_hostname, self._deadline.remaining(timeout)
        )
        return _DeadlineStream(secure, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kwargs: Any
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, self._deadline.remaining(timeout), **kwargs)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _Reply(Exception):
    """What one HTTP exchange gave when it was not a usable answer; `retry` when asking again
    may help (the server was slow, busy or cut the connection), not when the reply was wrong."""

    def __init__(
        self,
        reason: str,
        detail: str,
        retry: bool,
        status: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.retry = reason, detail, retry
        self.status, self.retry_after = status, retry_after

    @property
    def misconfigured(self) -> bool:
        """Every request would fail the same way: the run stops in one line."""
        return self.status in _FATAL or 300 <= self.status < 400

    @property
    def advice(self) -> str:
        if 300 <= self.status < 400:
            return "redirects are not followed (they would carry the API key); give the final URL"
        if self.status in (401, 403):
            return "check the API key"
        if self.status == 404:
            return "check --teacher and --model"
        return "check that --teacher is a running OpenAI-compatible server"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter (uniform up to the doubled back-off): clients that failed together do not all
    come back at the same moment."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _error_message(body: bytes) -> str:
    """The server's own words for an error reply (OpenAI's `error.message`), shortened."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f" ({str(message)[:200]})"


def _answer_text(payload: Any) -> str:
    """The first choice's text; anything else is a malformed reply."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Reply("teacher_bad_reply", "no choices[0].message.content", retry=False) from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _Reply(
            "teacher_bad_reply", f"content is a {type(content).__name__}, not text", retry=False
        )
    return content


@dataclass
class OpenAIChatClient:
    """Thread-safe: the pipeline's worker threads share one client and its pool of kept-alive
    connections. Redirects are never followed (the API key would go to wherever they point),
    `timeout` bounds each HTTP request whole, and a reply over `max_reply_bytes` is not read on."""

    base_url: str
    model: str
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    api_key: str | None = None
    max_reply_bytes: int = 4 << 20
    max_connections: int = 32
    _deadline: _Deadline = field(init=False, repr=False)
    _pool: httpcore.ConnectionPool = field(init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise TeacherConfigError(f"--teacher {self.base_url}: give an http:// or https:// URL")
        self._deadline = _Deadline()
        self._pool = httpcore.ConnectionPool(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_connections,
            network_backend=_DeadlineBackend(self._deadline),
        )
        self._rng = random.Random()

    def close(self) -> None:
        self._pool.close()

    def _exchange(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One HTTP request, whole within `timeout`: the JSON it returned, or _Reply."""
        headers = [(b"Accept", b"application/json"), (b"Content-Type", b"application/json")]
        if self.api_key:
            headers.append((b"Authorization", f"Bearer {self.api_key}".encode()))
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        timeouts = {key: self.timeout for key in ("connect", "read", "write", "pool")}
        self._deadline.at = time.monotonic() + self.timeout
        try:
            with self._pool.stream(
                method,
                self.base_url.rstrip("/") + path,
                headers=headers,
                content=data,
                extensions={"timeout": timeouts},
            ) as response:
                received = bytearray()
                for chunk in response.iter_stream():
                    received += chunk
                    if len(received) > self.max_reply_bytes:
                        raise _Reply(
                            "teacher_reply_too_large",
                            f"over {self.max_reply_bytes} bytes",
                            retry=False,
                        )
        except httpcore.TimeoutException:
            raise _Reply(
                "teacher_timeout", f"no whole answer within {self.timeout}s", retry=True
            ) from None
        except httpcore.ConnectError as error:
            raise _Reply("teacher_error", f"not reachable ({error})", retry=True) from None
        except (httpcore.ProtocolError, httpcore.NetworkError) as error:
            raise _Reply("teacher_bad_reply", f"broken HTTP reply ({error})", retry=True) from None
        finally:
            self._deadline.at = None
        if response.status != 200:
            found = {name.lower(): value.decode("latin-1") for name, value in response.headers}
            location = found.get(b"location")
            said = f" redirecting to {location}" if location else _error_message(bytes(received))
            raise _Reply(
                "teacher_error" if response.status in _RETRYABLE else "teacher_refused",
                f"HTTP {response.status}{said}",
                retry=response.status in _RETRYABLE,
                status=response.status,
                retry_after=_retry_after(found.get(b"retry-after")),
            )
        try:
            return json.loads(bytes(received))
        except ValueError:
            raise _Reply("teacher_bad_reply", "the reply is not JSON", retry=False) from None

    def served_models(self) -> list[str]:
        """What the server lists ([] when it has no /models, or lists in another shape than
        OpenAI's); fails in one line when it cannot be asked at all."""
        try:
            payload = self._exchange("GET", "/models", None)
        except _Reply as reply:
            if reply.status == 404 or not (reply.retry or reply.misconfigured):
                return []
            raise TeacherConfigError(
                f"teacher {self.base_url.rstrip('/')}/models: {reply.detail}; {reply.advice}"
            ) from None
        entries = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            return []
        return [
            entry["id"]
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
        ]

    def complete(self, request: TeacherRequest) -> str:
        body = {
            "model": self.model,
            "messages": to_openai_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        attempt = 0
        while True:
            try:
                return _answer_text(self._exchange("POST", "/chat/completions", body))
            except _Reply as reply:
                if reply.misconfigured:
                    raise TeacherConfigError(
                        f"teacher {self.base_url}: {reply.detail}; {reply.advice}"
                    ) from None
                if not reply.retry or attempt >= self.retries:
                    raise TeacherError(reply.reason, reply.detail) from None
                attempt += 1
                delay = backoff_delay(attempt, self.backoff, self.backoff_max, self._rng)
                if reply.retry_after is not None:
                    delay = max(delay, min(reply.retry_after, self.backoff_max))
                time.sleep(delay)
