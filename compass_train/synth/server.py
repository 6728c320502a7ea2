"""A loopback OpenAI-compatible chat-completions server over any teacher backend, so the HTTP
client is exercised against a real server (tests, benchmarks) and a checkpoint can be served.

    python -m compass_train.synth.server --teacher tiny --port 8000
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from compass_train.synth.teacher import Teacher, from_openai_messages

DEFAULT_MAX_BODY_BYTES = 32 << 20  # a few page images as data URLs
DEFAULT_MAX_TOKENS = 4096


class _Handler(BaseHTTPRequestHandler):
    server: TeacherServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add tens of milliseconds to every answer.
    disable_nagle_algorithm = True
    # A client that stops sending half-way frees its thread after this many seconds.
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        """Before the body is read: the connection closes, since the rest of it is not wanted."""
        self.close_connection = True
        self._reply(status, {"error": {"message": message}})

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._reply(200, {"object": "list", "data": [{"id": self.server.teacher.model}]})
        else:
            self._reply(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._reply(404, {"error": {"message": f"no route {self.path}"}})
            return
        limit = self.server.max_body_bytes
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._refuse(411, "a Content-Length header (a whole number of bytes) is required")
            return
        if not 0 <= length <= limit:
            self._refuse(
                413, f"Content-Length {length}: this server takes bodies of 0 to {limit} bytes"
            )
            return
        raw = self.rfile.read(length)
        self.server.count_request()
        try:
            body = json.loads(raw)
            request = from_openai_messages(
                body["messages"],
                int(body.get("max_tokens") or 256),
                float(body.get("temperature") or 0),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self._reply(400, {"error": {"message": f"bad request: {error}"}})
            return
        if not 1 <= request.max_tokens <= self.server.max_tokens:
            self._reply(
                400,
                {
                    "error": {
                        "message": f"max_tokens {request.max_tokens}: this server answers "
                        f"1 to {self.server.max_tokens} tokens"
                    }
                },
            )
            return
        try:
            text = self.server.teacher.complete(request)
        except Exception as error:  # the backend's failure is the client's HTTP 500, as on vLLM
            self._reply(500, {"error": {"message": str(error) or type(error).__name__}})
            return
        self._reply(
            200,
            {
                "id": f"chatcmpl-{self.server.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.server.teacher.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            },
        )


class TeacherServer(ThreadingHTTPServer):
    """`with TeacherServer(teacher) as server:` serves on 127.0.0.1 from a background thread.
    Request bodies over `max_body_bytes` and answers over `max_tokens` are refused, so that one
    client can neither exhaust the memory nor hold the model for long."""

    daemon_threads = True

    def __init__(
        self,
        teacher: Teacher,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.teacher = teacher
        self.max_body_bytes = max_body_bytes
        self.max_tokens = max_tokens
        self.requests = 0
        self.connections = 0
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            self.connections += 1
        super().process_request(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> TeacherServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def main(argv: list[str] | None = None) -> None:
    from compass_train.synth.inprocess import InProcessTeacher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--teacher", default="tiny", help="tiny, tiny:SEED or a checkpoint directory"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="longest answer in tokens"
    )
    args = parser.parse_args(argv)
    server = TeacherServer(
        InProcessTeacher.from_spec(args.teacher),
        args.host,
        args.port,
        args.max_body_bytes,
        args.max_tokens,
    )
    print(f"serving {server.teacher.model} at {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
