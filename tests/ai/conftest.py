"""A tiny real chat-completions server on 127.0.0.1 for provider tests.

Each test queues replies: a JSON-able content string (200 answer), an HTTP status code,
("sleep", seconds) to simulate a timeout, ("hold", at_most_s, content) for an answer held until the test sets
`release` (or at_most_s passes), ("length", content) for an answer cut at max_tokens, or
("echo",) for a model that parrots its input. `reject_json_schema` makes the server refuse the
json_schema response format with a 400, as servers without structured output do. Every request body
is kept for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class ChatServer:
    def __init__(self) -> None:
        self.replies: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default: Any = 500
        self.reject_json_schema = False
        self.release = threading.Event()  # ends every ("hold", ...) reply early
        self.answered = 0  # responses written so far
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "body": body})
                finish = "stop"
                if server.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
                    reply: Any = ("status", 400, "response_format type json_schema is not supported")
                else:
                    reply = server.replies.popleft() if server.replies else server.default
                if isinstance(reply, tuple) and reply[0] == "length":
                    finish, reply = "length", reply[1]
                if isinstance(reply, tuple) and reply[0] == "echo":
                    reply = body["messages"][-1]["content"]
                if isinstance(reply, tuple) and reply[0] == "sleep":
                    time.sleep(reply[1])
                    reply = reply[2] if len(reply) > 2 else json.dumps({})
                if isinstance(reply, tuple) and reply[0] == "hold":
                    server.release.wait(reply[1])
                    reply = reply[2]
                message = None
                if isinstance(reply, tuple) and reply[0] == "status":
                    reply, message = reply[1], reply[2]
                if isinstance(reply, int):
                    payload = json.dumps({"error": {"message": message or f"status {reply}", "type": "test"}}).encode()
                    self.send_response(reply)
                    if reply == 429:
                        self.send_header("Retry-After", "0")
                else:
                    content = reply if isinstance(reply, str) else json.dumps(reply)
                    payload = json.dumps({
                        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "test-model"),
                        "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                server.answered += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # shutdown() waits for the serve loop's next poll: 0.5 s by default, paid by every test at teardown.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s
