"""The outbox: one message per committed change, delivered in order per enrollment, at least
once, to a real HTTP server on localhost that fails and recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pathway import Clinic, GuardRefused
from pathway_cli.main import cli

PATHWAY = "cervical-neurotomy"


class Receiver:
    """A localhost endpoint that answers 500 to its first `failures` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests += 1
                    fail = receiver.requests <= receiver.failures
                    if not fail:
                        message = json.loads(body)
                        assert message["id"] == self.headers["X-Pathway-Message-Id"]
                        receiver.received.append(message)
                self.send_response(500 if fail else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pathway"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def journeys(clinic: Clinic) -> None:
    for patient in ("P1", "P2"):
        clinic.enroll(patient, PATHWAY, at="2026-01-05")
        clinic.advance(patient, "start_evaluation", at="2026-01-06")
        clinic.advance(patient, "hold", at="2026-01-07", reason="waiting for records")


def per_enrollment(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    for m in messages:
        order.setdefault(m["patient"], []).append(m.get("trigger") or m["type"])
    return order


def test_every_change_writes_one_message_with_a_stable_envelope(clinic: Clinic) -> None:
    journeys(clinic)
    clinic.record("P1", "contact_attempt", {"outcome": "reached"}, at="2026-01-08")
    rows = clinic.outbox()
    assert len(rows) == 7
    message = rows[2]["message"]
    for key in (
        "id",
        "type",
        "enrollment",
        "patient",
        "pathway",
        "trigger",
        "from",
        "to",
        "effective_at",
        "recorded_at",
        "actor",
        "role",
    ):
        assert key in message
    assert rows[-1]["message"]["type"] == "observation.recorded"
    assert rows[-1]["message"]["observation"]["kind"] == "contact_attempt"
    assert all(r["delivered_at"] is None for r in rows)


def test_delivery_marks_messages_only_after_a_2xx_answer(clinic: Clinic, receiver: Receiver) -> None:
    journeys(clinic)
    report = clinic.deliver_outbox(receiver.url)
    assert (report.delivered, report.failed) == (6, 0)
    assert per_enrollment(receiver.received) == {
        "P1": ["enroll", "start_evaluation", "hold"],
        "P2": ["enroll", "start_evaluation", "hold"],
    }
    assert clinic.outbox(pending_only=True) == []
    assert clinic.deliver_outbox(receiver.url).delivered == 0  # nothing is sent twice


def test_a_failing_server_loses_nothing_and_order_is_kept_after_recovery(clinic: Clinic) -> None:
    journeys(clinic)
    flaky = Receiver(failures=2)
    try:
        first = clinic.deliver_outbox(flaky.url, base_delay=0.0)
        # each enrollment's first message failed; the rest were held back behind it
        assert (first.failed, first.delivered, first.held_back) == (2, 0, 4)
        pending = clinic.outbox(pending_only=True)
        assert len(pending) == 6 and pending[0]["attempts"] == 1
        assert pending[0]["last_error"] == "HTTP 500"
        second = clinic.deliver_outbox(flaky.url, base_delay=0.0)
        assert second.delivered == 6
        assert per_enrollment(flaky.received) == {
            "P1": ["enroll", "start_evaluation", "hold"],
            "P2": ["enroll", "start_evaluation", "hold"],
        }
    finally:
        flaky.close()


def test_a_failed_message_waits_for_its_back_off(clinic: Clinic) -> None:
    clinic.enroll("P1", PATHWAY, at="2026-01-05")
    flaky = Receiver(failures=1)
    try:
        assert clinic.deliver_outbox(flaky.url, base_delay=60).failed == 1
        report = clinic.deliver_outbox(flaky.url, base_delay=60)
        assert (report.delivered, report.held_back) == (0, 1)  # not due for a minute
    finally:
        flaky.close()


def test_no_server_at_all_is_a_failure_not_a_loss(clinic: Clinic) -> None:
    clinic.enroll("P1", PATHWAY, at="2026-01-05")
    report = clinic.deliver_outbox("http://127.0.0.1:9/nowhere", timeout=2, base_delay=0.0)
    assert report.failed == 1 and "no answer" in report.errors[0]
    assert len(clinic.outbox(pending_only=True)) == 1


def test_subscribers_run_after_commit_and_not_for_refusals(clinic: Clinic) -> None:
    seen: list[dict[str, Any]] = []
    unsubscribe = clinic.subscribe(seen.append)
    clinic.enroll("P1", PATHWAY, at="2026-01-05")
    clinic.advance("P1", "start_evaluation", at="2026-01-06")
    with pytest.raises(GuardRefused):
        clinic.advance("P1", "schedule_blocks", at="2026-01-07")
    assert [m["type"] for m in seen] == ["enrollment.opened", "enrollment.transitioned"]
    assert seen[1]["to"] == "evaluation"

    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    clinic.subscribe(broken)
    clinic.advance("P1", "decline", at="2026-01-08")  # a failing subscriber undoes nothing
    assert clinic.status("P1").state == "declined"
    assert len(seen) == 3
    unsubscribe()
    unsubscribe()  # a second call does nothing
    clinic.enroll("P2", PATHWAY, at="2026-01-05")
    assert len(seen) == 3


def test_cli_outbox_list_and_deliver(tmp_path: Path, receiver: Receiver) -> None:
    db = f"sqlite:///{tmp_path / 'o.db'}"
    runner = CliRunner()
    runner.invoke(cli, ["--db", db, "enroll", "P1", "--pathway", PATHWAY, "--at", "2026-01-05"])
    listed = json.loads(runner.invoke(cli, ["--db", db, "outbox", "list", "--json"]).output)
    assert listed[0]["message"]["type"] == "enrollment.opened"
    assert "enrollment.opened" in runner.invoke(cli, ["--db", db, "outbox", "list"]).output
    down = runner.invoke(
        cli,
        [
            "--db",
            db,
            "outbox",
            "deliver",
            "--url",
            "http://127.0.0.1:9/x",
            "--timeout",
            "2",
            "--retry-delay",
            "0",
        ],
    )
    assert down.exit_code == 1 and "failed 1" in down.output
    bad = runner.invoke(cli, ["--db", db, "outbox", "deliver", "--url", "ftp://x"])
    assert bad.exit_code == 2
    done = runner.invoke(
        cli, ["--db", db, "outbox", "deliver", "--url", receiver.url, "--retry-delay", "0", "--json"]
    )
    assert done.exit_code == 0 and json.loads(done.output)["delivered"] == 1


def test_follow_keeps_delivering_through_failures_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    with Clinic.open(db, actor="a", role="coordinator") as clinic:
        clinic.enroll("P1", PATHWAY, at="2026-01-05")
    flaky = Receiver(failures=3)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pathway_cli.main",
            "--db",
            db,
            "outbox",
            "deliver",
            "--url",
            flaky.url,
            "--follow",
            "--interval",
            "0.1",
            "--retry-delay",
            "0.05",
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        with Clinic.open(db, actor="a", role="coordinator") as clinic:
            clinic.advance("P1", "start_evaluation", at="2026-01-06")  # arrives while following
            deadline = time.monotonic() + 20
            while len(flaky.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [m.get("trigger") for m in flaky.received] == ["enroll", "start_evaluation"]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        flaky.close()
