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


class _Handler(BaseHTTPRequestHandler):
    server: TeacherServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add tens of milliseconds to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._reply(200, {"object": "list", "data": [{"id": self.server.teacher.model}]})
        else:
            self._reply(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._reply(404, {"error": {"message": f"no route {self.path}"}})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.count_request()
        try:
            body = json.loads(raw)
            request = from_openai_messages(
                body["messages"],
                int(body.get("max_tokens") or 256),
                float(body.get("temperature") or 0),
            )
        except (ValueError, KeyError, TypeError) as error:
            self._reply(400, {"error": {"message": f"bad request: {error}"}})
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
    """`with TeacherServer(teacher) as server:` serves on 127.0.0.1 from a background thread."""

    daemon_threads = True

    def __init__(self, teacher: Teacher, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.teacher = teacher
        self.requests = 0
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

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
    args = parser.parse_args(argv)
    server = TeacherServer(InProcessTeacher.from_spec(args.teacher), args.host, args.port)
    print(f"serving {server.teacher.model} at {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
