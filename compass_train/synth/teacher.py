"""Teacher backends behind one call, `complete(request) -> text`: an OpenAI-compatible
chat-completions client (vLLM, SGLang and other servers; images as data URLs) with timeouts and
retries with back-off. The in-process backend is in `inprocess.py`, the request cache in `cache.py`."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

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


@dataclass
class OpenAIChatClient:
    """Stateless and thread-safe: the pipeline's worker threads share one client."""

    base_url: str
    model: str
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    api_key: str | None = None

    def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        http = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, headers=headers)
        with urllib.request.urlopen(http, timeout=self.timeout) as response:
            return json.loads(response.read())

    def served_models(self) -> list[str]:
        """What the server says it serves ([] if it has no /models); fails in one line if unreachable."""
        try:
            return [entry["id"] for entry in self._post("/models", None).get("data", [])]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise TeacherConfigError(
                f"teacher {self.base_url}: HTTP {error.code} on /models"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise TeacherConfigError(
                f"teacher {self.base_url} is not reachable ({error})"
            ) from None

    def complete(self, request: TeacherRequest) -> str:
        body = {
            "model": self.model,
            "messages": to_openai_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        failure = TeacherError("teacher_error", "no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))
            try:
                payload = self._post("/chat/completions", body)
                return payload["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as error:
                if error.code in _FATAL:
                    raise TeacherConfigError(
                        f"teacher {self.base_url} answered HTTP {error.code}: check --teacher, "
                        "--model and the API key"
                    ) from None
                if error.code not in _RETRYABLE:
                    raise TeacherError("teacher_refused", f"HTTP {error.code}") from None
                failure = TeacherError("teacher_error", f"HTTP {error.code}")
            except TimeoutError:
                failure = TeacherError("teacher_timeout", f"no answer within {self.timeout}s")
            except urllib.error.URLError as error:
                if isinstance(error.reason, TimeoutError):
                    failure = TeacherError("teacher_timeout", f"no answer within {self.timeout}s")
                else:
                    failure = TeacherError("teacher_error", str(error.reason))
            except (ConnectionError, ValueError, KeyError, IndexError, TypeError) as error:
                failure = TeacherError("teacher_error", f"bad response ({error})")
        raise failure
