"""Teacher backends over a real loopback HTTP server: the tiny model served through the in-process
backend, retries after HTTP 500, timeouts within the retry budget, and the request cache."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fixtures.synth.support import FailOnce, Slow, Stall, make_report_pdf

from compass_train.synth.cache import CachedTeacher, RequestCache
from compass_train.synth.config import TeacherConfig
from compass_train.synth.inprocess import InProcessTeacher
from compass_train.synth.pages import load_page
from compass_train.synth.pipeline import open_teacher
from compass_train.synth.server import TeacherServer
from compass_train.synth.teacher import (
    OpenAIChatClient,
    TeacherConfigError,
    TeacherError,
    TeacherRequest,
)


@pytest.fixture(scope="module")
def tiny() -> InProcessTeacher:
    return InProcessTeacher.from_spec("tiny")


@pytest.fixture(scope="module")
def page_png(tmp_path_factory) -> bytes:
    pdf = make_report_pdf(tmp_path_factory.mktemp("pdf") / "p.pdf", "決算", [[("売上高", 1200)]])
    return load_page(pdf, 0, 384).png


def ask(png: bytes, text: str = "このページの文字を書き起こしてください。") -> TeacherRequest:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return TeacherRequest(messages, [png], max_tokens=12)


def client(server: TeacherServer, **settings) -> OpenAIChatClient:
    return OpenAIChatClient(server.url, server.teacher.model, **{"backoff": 0.01, **settings})


def test_http_roundtrip_gives_the_in_process_answer(tiny, page_png):
    request = ask(page_png)
    with TeacherServer(tiny) as server:
        assert server.url.startswith("http://127.0.0.1:")
        remote = client(server)
        assert remote.served_models() == ["tiny"]
        answer = remote.complete(request)
    # The page image went over the wire as a data URL and came back to the same model, greedy.
    assert answer == tiny.complete(request)
    assert answer.strip()
    assert server.requests == 1


def test_text_only_requests_work_too(tiny):
    request = TeacherRequest([{"role": "user", "content": "1 + 1 は?"}], max_tokens=8)
    with TeacherServer(tiny) as server:
        assert client(server).complete(request) == tiny.complete(request)


def test_http_500_then_success_is_retried(tiny, page_png):
    with TeacherServer(FailOnce(tiny)) as server:
        answer = client(server, retries=2).complete(ask(page_png))
        assert server.requests == 2  # one HTTP 500, one success
    assert answer == tiny.complete(ask(page_png))


def test_failures_past_the_retry_budget_raise_with_a_reason(tiny, page_png):
    with TeacherServer(FailOnce(tiny)) as server:
        with pytest.raises(TeacherError) as failure:
            client(server, retries=0).complete(ask(page_png))
        assert failure.value.reason == "teacher_error" and "500" in failure.value.detail
        assert server.requests == 1


def test_timeout_is_retried_then_given_up(tiny, page_png):
    stall = Stall(tiny, {hashlib.sha256(page_png).hexdigest()}, seconds=5.0)
    with TeacherServer(stall) as server:
        started = time.monotonic()
        with pytest.raises(TeacherError) as failure:
            client(server, timeout=0.3, retries=1).complete(ask(page_png))
        elapsed = time.monotonic() - started
        stall.released.set()
    assert failure.value.reason == "teacher_timeout"
    assert server.requests == 2
    assert elapsed < 2.0  # two timeouts and one back-off, not the stall


def test_cache_answers_repeated_requests_without_the_server(tiny, page_png, tmp_path):
    with TeacherServer(tiny) as server:
        cached = CachedTeacher(client(server), RequestCache(tmp_path / "cache.sqlite"))
        first = cached.complete(ask(page_png))
        assert cached.complete(ask(page_png)) == first
        cached.complete(ask(page_png, "表の数値を読んでください。"))  # another prompt: asked
        assert server.requests == 2
        # The cache survives the process: a new one on the same file still knows the answer.
        cached.cache.close()
        reopened = CachedTeacher(client(server), RequestCache(tmp_path / "cache.sqlite"))
        assert reopened.complete(ask(page_png)) == first
        assert server.requests == 2 and reopened.hits == 1


def test_cache_key_is_model_prompt_and_image():
    base = ask(b"\x89PNG one")
    assert base.cache_key("m") == ask(b"\x89PNG one").cache_key("m")
    assert base.cache_key("m") != base.cache_key("other-model")
    assert base.cache_key("m") != ask(b"\x89PNG two").cache_key("m")
    assert base.cache_key("m") != ask(b"\x89PNG one", "別の質問").cache_key("m")


def test_unknown_model_and_unreachable_server_are_config_errors(tiny, tmp_path):
    with TeacherServer(tiny) as server:
        url = server.url
        with pytest.raises(TeacherConfigError, match="not 'qwen'"):
            open_teacher(TeacherConfig(teacher=url, model="qwen"), tmp_path)
    with pytest.raises(TeacherConfigError, match="not reachable"):
        OpenAIChatClient(url, "tiny", timeout=1).served_models()


def test_in_process_teacher_loads_a_phase_checkpoint(tiny, page_png, tiny_checkpoint):
    from_checkpoint = InProcessTeacher.from_spec(str(tiny_checkpoint))
    assert from_checkpoint.model == "p0"
    # The same seeded weights, saved and loaded: the same greedy answer as the built model.
    assert from_checkpoint.complete(ask(page_png)) == tiny.complete(ask(page_png))


def test_identical_requests_in_flight_are_asked_once(tiny, page_png, tmp_path):
    with TeacherServer(Slow(tiny, 0.3)) as server:
        cached = CachedTeacher(client(server), RequestCache(tmp_path / "cache.sqlite"))
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: cached.complete(ask(page_png)), range(4)))
        assert server.requests == 1 and len(set(answers)) == 1
        assert (cached.misses, cached.hits) == (1, 3)
