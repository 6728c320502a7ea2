"""The teacher client against real loopback servers that misbehave the ways remote ones do:
redirects never carry the API key, a trickling server cannot stretch a request past its deadline,
replies are capped, connections are reused, Retry-After is honoured, every malformed reply is that
item's reject (counted by reason in the dataset card), never the run's end; and the loopback
teacher server caps request bodies and max_tokens, saying so."""

from __future__ import annotations

import http.client
import json
import random
import re
import socketserver
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import pytest
from test_synth_distill import distill, write_sources

from compass_train.synth.config import TeacherConfig
from compass_train.synth.pipeline import open_teacher
from compass_train.synth.server import DEFAULT_MAX_TOKENS, TeacherServer
from compass_train.synth.teacher import (
    OpenAIChatClient,
    TeacherConfigError,
    TeacherError,
    TeacherRequest,
    backoff_delay,
)

# Writes one reply to the socket; returns whether the connection may serve another request.
Respond = Callable[[BinaryIO, bytes, bytes], bool]


class _RawHandler(socketserver.StreamRequestHandler):
    timeout = 10  # a silent client frees the thread

    def handle(self) -> None:
        try:
            while request_line := self.rfile.readline():
                headers = {}
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length", 0)))
                self.server.seen.append((time.monotonic(), request_line, headers, body))
                if not self.server.respond(self.wfile, request_line, body):
                    return
        except OSError:
            return  # the client gave up on us: that is what some tests want


class RawServer(socketserver.ThreadingTCPServer):
    """A loopback HTTP/1.1 server whose replies are whatever bytes `respond` writes."""

    daemon_threads = True

    def __init__(self, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self.respond = respond
        self.seen: list[tuple[float, bytes, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> RawServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def reply(body: bytes, status: str = "200 OK", *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def answer(content: object) -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": content}}]}
    ).encode()


def always(raw: bytes, keep_alive: bool = True) -> Respond:
    def respond(out: BinaryIO, request_line: bytes, body: bytes) -> bool:
        out.write(raw)
        out.flush()
        return keep_alive

    return respond


def text_request(text: str = "1 + 1 は?", max_tokens: int = 8) -> TeacherRequest:
    return TeacherRequest([{"role": "user", "content": text}], max_tokens=max_tokens)


def client(url: str, **settings) -> OpenAIChatClient:
    return OpenAIChatClient(url, "m", **{"backoff": 0.01, "timeout": 5.0, **settings})


MALFORMED = {
    "garbage status line": (b"HELLO THERE\r\n\r\n", False),
    "binary bytes": (reply(bytes(range(256)) * 4), True),
    "truncated body": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + answer("cut")[:20],
        False,
    ),
    "content is a number": (reply(answer(42)), True),
    "content is a list": (reply(answer([{"type": "text", "text": "x"}])), True),
    "no choices": (reply(b'{"object": "chat.completion"}'), True),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_reply_is_that_request_failing_with_a_reason(case):
    raw, keep_alive = MALFORMED[case]
    with RawServer(always(raw, keep_alive)) as server, pytest.raises(TeacherError) as failure:
        client(server.url, retries=1).complete(text_request())
    assert failure.value.reason == "teacher_bad_reply", failure.value
    # A cut or garbled connection may be a one-off and is asked again; a wrong answer is not.
    assert len(server.seen) == (1 if keep_alive else 2)


def test_reply_over_the_size_cap_is_not_read_on():
    huge = reply(answer("a" * 2_000_000))
    with RawServer(always(huge)) as server, pytest.raises(TeacherError) as failure:
        client(server.url, max_reply_bytes=100_000).complete(text_request())
    assert failure.value.reason == "teacher_reply_too_large"


def trickle(head: bytes, drip: bytes) -> Respond:
    """Sends `head`, then one byte of `drip` every 0.25 s (at most 15 s' worth)."""

    def respond(out: BinaryIO, request_line: bytes, body: bytes) -> bool:
        out.write(head)
        for byte in drip[:60]:
            out.write(bytes([byte]))
            out.flush()
            time.sleep(0.25)
        return False

    return respond


@pytest.mark.parametrize(
    "head,drip",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n", answer("x" * 200)),  # the body
        (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 100),  # the headers
    ],
    ids=["body", "headers"],
)
def test_a_trickling_server_cannot_hold_a_request_past_its_deadline(head, drip):
    with RawServer(trickle(head, drip)) as server:
        started = time.monotonic()
        with pytest.raises(TeacherError) as failure:
            client(server.url, timeout=2.0, retries=0).complete(text_request())
        elapsed = time.monotonic() - started
    assert failure.value.reason == "teacher_timeout"
    assert 1.9 < elapsed < 3.0  # every read waited, yet the whole request ended on time


def test_a_redirect_never_receives_the_api_key():
    with RawServer(always(reply(answer("from the redirect target")))) as elsewhere:
        redirect = reply(b"", "302 Found", f"Location: {elsewhere.url}/chat/completions")
        with RawServer(always(redirect)) as teacher:
            remote = client(teacher.url, api_key="sk-secret-key")
            with pytest.raises(TeacherConfigError, match="302.*redirects are not followed"):
                remote.served_models()
            with pytest.raises(TeacherConfigError, match="redirects are not followed"):
                remote.complete(text_request())
    assert len(teacher.seen) == 2
    assert all(
        headers["authorization"] == "Bearer sk-secret-key" for *_, headers, _ in teacher.seen
    )
    assert elsewhere.seen == []  # neither the key nor anything else went to the redirect target


class Echo:
    model = "echo"

    def complete(self, request: TeacherRequest) -> str:
        return request.messages[0]["content"]


def test_connections_are_reused_at_concurrency_16():
    with TeacherServer(Echo()) as server:
        remote = OpenAIChatClient(server.url, "echo")
        answers = [remote.complete(text_request(f"q{i}")) for i in range(20)]
        assert answers == [f"q{i}" for i in range(20)]
        assert server.connections == 1
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda i: remote.complete(text_request(f"p{i}")), range(96)))
        assert replies == [f"p{i}" for i in range(96)]
        assert server.requests == 116 and server.connections <= 1 + 16


def test_retry_after_is_honoured():
    calls = []

    def busy_once(out: BinaryIO, request_line: bytes, body: bytes) -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            out.write(
                reply(b'{"error": {"message": "busy"}}', "429 Too Many Requests", "Retry-After: 1")
            )
        else:
            out.write(reply(answer("done")))
        out.flush()
        return True

    with RawServer(busy_once) as server:
        assert client(server.url, retries=2, backoff=0.01).complete(text_request()) == "done"
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.95


def test_backoff_is_jittered_within_the_doubled_delay():
    rng = random.Random(0)
    delays = [backoff_delay(3, base=1.0, cap=30.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert min(delays) < 1.0 and max(delays) > 3.0  # spread out, not one fixed value
    assert max(backoff_delay(12, 1.0, 30.0, rng) for _ in range(50)) <= 30.0


@pytest.mark.parametrize(
    "listing",
    [b"[1, 2]", b'{"data": "tiny"}', b'{"data": [1, {"id": 3}]}', bytes(range(200))],
    ids=["a list", "data not a list", "entries without string ids", "binary"],
)
def test_a_models_listing_of_the_wrong_shape_lists_nothing(listing, tmp_path):
    with RawServer(always(reply(listing))) as server:
        assert client(server.url).served_models() == []
        # With --model given the run goes on; without it, one line says what to pass.
        open_teacher(TeacherConfig(teacher=server.url, model="m"), tmp_path)
        with pytest.raises(TeacherConfigError, match="pass --model"):
            open_teacher(TeacherConfig(teacher=server.url), tmp_path)


MODES = ["good", "garbage", "binary", "number", "list", "truncated"]


def mixed_server(asked: dict[str, str]) -> Respond:
    """A teacher that answers some problems well and the others in one broken way each."""

    def respond(out: BinaryIO, request_line: bytes, body: bytes) -> bool:
        if b"/models" in request_line:
            out.write(reply(b'{"object": "list", "data": [{"id": "m"}]}'))
            out.flush()
            return True
        problem = json.loads(body)["messages"][0]["content"][-1]["text"].split("問題: ", 1)[1]
        mode = asked.setdefault(problem, MODES[len(asked) % len(MODES)])
        total = sum(int(n) for n in re.findall(r"\d+", problem))
        good = (
            f"<Problem>{problem}</Problem><Thinking>足す。</Thinking>"
            f"<Answer>\\boxed{{{total}}}</Answer>"
        )
        raw = {
            "good": reply(answer(good)),
            "garbage": b"\x00\x01 NOT HTTP\r\n\r\n",
            "binary": reply(b"\xff\xfe\x00" * 50),
            "number": reply(answer(7)),
            "list": reply(answer(["x"])),
            "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n" + answer(good)[:30],
        }[mode]
        out.write(raw)
        out.flush()
        return mode not in ("garbage", "truncated")

    return respond


def test_malformed_replies_are_counted_by_reason_and_the_run_finishes(tmp_path, capsys):
    sources = write_sources(tmp_path, arith_quota=10)
    out = tmp_path / "data"
    asked: dict[str, str] = {}
    with RawServer(mixed_server(asked)) as server:
        status = distill(sources, out, server.url, 10, "--backoff", "0.01", "--retries", "1")
    assert status == 0
    card = json.loads((out / "distill" / "dataset_card.json").read_text(encoding="utf-8"))
    broken = sum(mode != "good" for mode in asked.values())
    assert len(asked) == 10 and broken == 8
    assert card["rejects"].get("teacher_bad_reply") == broken
    # The one sum whose reference is wrong (see write_sources) is rejected by the answer check.
    assert card["total_records"] + card["rejects"].get("answer_mismatch", 0) == 10 - broken


def raw_post(server: TeacherServer, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.putrequest("POST", "/v1/chat/completions")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())["error"]["message"]
    finally:
        connection.close()


def test_loopback_server_caps_the_body_and_says_so():
    with TeacherServer(Echo(), max_body_bytes=1000) as server:
        status, message = raw_post(server, b"{}", {"Content-Length": str(10**12)})
        assert status == 413 and "0 to 1000 bytes" in message
        status, message = raw_post(server, b"", {})
        assert status == 411 and "Content-Length" in message
        assert server.requests == 0  # nothing was read, nothing reached the model


def test_loopback_server_caps_max_tokens_and_the_client_reports_its_words():
    with TeacherServer(Echo()) as server:
        remote = OpenAIChatClient(server.url, "echo", retries=3, backoff=0.01)
        with pytest.raises(TeacherError) as failure:
            remote.complete(text_request(max_tokens=10**6))
        assert failure.value.reason == "teacher_refused"
        assert f"1 to {DEFAULT_MAX_TOKENS} tokens" in failure.value.detail
        assert server.requests == 1  # a refusal is not retried
        assert remote.complete(text_request("ok", max_tokens=DEFAULT_MAX_TOKENS)) == "ok"
