"""A real HTTP receiver for notifications: records every POST, answers as it is told.

Its URL carries a secret token in the path, as the services' webhook URLs do, so tests can
check that the token is never written to a log line, an Event or the status.
"""

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # an answer that never comes (the connection stays open)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    answered: int


class Receiver:
    """`with Receiver(answers=[500, 500]) as r:` answers 500 twice, then `default`."""

    def __init__(
        self, answers: list[int] | None = None, default: int = 200, answer_body: bytes = b"ok"
    ) -> None:
        self.answers = list(answers or [])
        self.default = default
        self.answer_body = answer_body
        self.token = secrets.token_hex(12)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver.lock:
                    code = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw or b"null"), code)
                    )
                if code == HANG:
                    receiver.release.wait(60)
                    return
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(receiver.answer_body)))
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{self.token}"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.received]

    def successes(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def settle(self, seconds: float = 1.0) -> None:
        """Wait a while, so that a second (wrong) delivery would have arrived."""
        time.sleep(seconds)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __iter__(self) -> Iterator[Received]:
        with self.lock:
            return iter(list(self.received))
