"""Delivery to receivers that misbehave: a redirect, an answer that is not HTTP, and one
enrollment whose messages are always refused. None loses a message, marks one delivered
that was not, crashes the deliverer, or stops delivery to everyone else."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pathway import Clinic

PATHWAY = "cervical-neurotomy"


class Server:
    """A localhost HTTP server; `answer(method, path, message)` gives (status, headers)."""

    def __init__(self, answer: Any) -> None:
        self.seen: list[tuple[str, str, dict[str, Any] | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.seen.append((method, self.path, body))
                status, headers = answer(method, self.path, body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory() -> Iterator[Any]:
    servers: list[Server] = []

    def make(answer: Any) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_a_redirect_is_a_failure_not_a_delivery(clinic: Clinic, server_factory: Any) -> None:
    clinic.enroll("P1", PATHWAY, at="2026-01-05")

    def answer(method: str, path: str, _body: Any) -> tuple[int, dict[str, str]]:
        return (302, {"Location": "/landing"}) if path == "/in" else (200, {})

    server = server_factory(answer)
    report = clinic.deliver_outbox(server.url + "/in", base_delay=0.0)
    assert (report.delivered, report.failed) == (0, 1)
    assert "HTTP 302" in report.errors[0] and "redirect" in report.errors[0]
    assert [(m, p) for m, p, _ in server.seen] == [("POST", "/in")]  # the redirect was not followed
    (pending,) = clinic.outbox(pending_only=True)
    assert pending["attempts"] == 1


def test_an_answer_that_is_not_http_is_a_failed_attempt(clinic: Clinic) -> None:
    clinic.enroll("P1", PATHWAY, at="2026-01-05")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def garbage() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"NOT-HTTP garbage\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=garbage, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/in"
        for attempt in (1, 2):
            report = clinic.deliver_outbox(url, base_delay=0.0, timeout=5)
            assert (report.delivered, report.failed) == (0, 1)
            assert "no answer" in report.errors[0]
            (pending,) = clinic.outbox(pending_only=True)
            assert pending["attempts"] == attempt  # counted, so the back-off grows
    finally:
        thread.join(timeout=5)
        listener.close()


def test_one_refused_enrollment_does_not_stop_delivery_to_the_others(
    clinic: Clinic, server_factory: Any
) -> None:
    # P0's messages come first and are always refused; there are more of them than a batch.
    clinic.enroll("P0", PATHWAY, at="2026-01-05")
    for day in range(6, 12):
        clinic.record(
            "P0", "contact_attempt", {"outcome": "no_response"}, at=f"2026-01-{day:02d}", role="coordinator"
        )
    for patient in ("P1", "P2", "P3"):
        clinic.enroll(patient, PATHWAY, at="2026-01-20")

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str]]:
        return (400 if body["patient"] == "P0" else 204), {}

    server = server_factory(answer)
    first = clinic.deliver_outbox(server.url, batch=3, base_delay=60)
    assert first.failed == 1 and first.delivered == 0  # P0's first; its next two wait behind it
    second = clinic.deliver_outbox(server.url, batch=3, base_delay=60)
    assert second.delivered == 3
    delivered = [body["patient"] for m, _, body in server.seen if body and body["patient"] != "P0"]
    assert delivered == ["P1", "P2", "P3"]
    # P0's messages are all still pending, in order, the first waiting for its retry.
    pending = clinic.outbox(pending_only=True)
    assert [m["message"]["patient"] for m in pending] == ["P0"] * 7
    assert [m["attempts"] for m in pending] == [1, 0, 0, 0, 0, 0, 0]
