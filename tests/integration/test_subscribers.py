"""Subscribers of the outbox, as a receiving system meets them: signed webhooks (checked
with the standardwebhooks package), filters, a receiver that fails and recovers, dead
letters that hold the stream (or not), retry, replay, two delivery processes at once, and
RabbitMQ with publisher confirms."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from pathway import Clinic, InvalidInput, NotFound
from tests.service.conftest import pathway_cli, pathway_here


class Receiver:
    """A webhook receiver on localhost that checks every signature and can be told to fail."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.got: list[dict[str, Any]] = []
        self.answers: list[int] = []  # statuses to answer first (then 200)
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    try:
                        Webhook(receiver.secret or "").verify(body, dict(self.headers.items()))
                    except Exception:
                        receiver.bad_signatures += 1
                        status = 401
                    if status == 200:
                        receiver.got.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def subscribe(clinic: Clinic, receiver: Receiver, name: str = "ehr", **options: Any) -> dict[str, Any]:
    made = clinic.add_subscriber(name, url=receiver.url, **options)
    receiver.secret = made["secret"]
    return made


def journey(clinic: Clinic, patient: str) -> None:
    clinic.enroll(patient, "cervical-neurotomy", at="2026-01-05", actor="c", role="coordinator")
    clinic.advance(patient, "start_evaluation", at="2026-01-06", actor="c", role="coordinator")
    clinic.record(
        patient, "contact_attempt", {"outcome": "no_response"}, at="2026-01-07", actor="c", role="coordinator"
    )


def kinds(got: list[dict[str, Any]], patient: str) -> list[str]:
    return [m["type"] for m in got if m["patient"] == patient]


def test_a_webhook_gets_every_message_signed_in_order(clinic: Clinic, receiver: Receiver) -> None:
    made = subscribe(clinic, receiver)
    assert made["secret"].startswith("whsec_")
    assert "secret" not in clinic.subscribers()[0]
    journey(clinic, "W1")
    report = clinic.deliver_subscribers(base=0).to_dict()
    assert report["delivered"] == {"ehr": 3} and not report["failed"]
    assert receiver.bad_signatures == 0
    assert kinds(receiver.got, "W1") == [
        "enrollment.opened",
        "enrollment.transitioned",
        "observation.recorded",
    ]
    assert clinic.subscribers()[0]["lag"] == 0
    # Nothing twice: a second pass sends nothing.
    assert clinic.deliver_subscribers(base=0).to_dict()["delivered"] == {}
    assert len(receiver.got) == 3


def test_filters_by_type_and_pathway(clinic: Clinic, receiver: Receiver) -> None:
    subscribe(clinic, receiver, "changes", types=["enrollment.transitioned"], pathway="cervical-neurotomy")
    journey(clinic, "F1")
    clinic.enroll("F2", "lumbar-neurotomy", at="2026-01-05", actor="c", role="coordinator")
    clinic.advance("F2", "start_evaluation", at="2026-01-06", actor="c", role="coordinator")
    clinic.deliver_subscribers(base=0)
    assert [(m["patient"], m["type"]) for m in receiver.got] == [("F1", "enrollment.transitioned")]
    assert clinic.subscribers()[0]["lag"] == 0  # the others are settled: not for it


def test_a_receiver_that_fails_and_recovers_loses_nothing_and_keeps_order(
    clinic: Clinic, receiver: Receiver
) -> None:
    subscribe(clinic, receiver)
    journey(clinic, "R1")
    receiver.answers = [503]
    first = clinic.deliver_subscribers(base=0).to_dict()
    assert first["failed"] == {"ehr": 1} and first["delivered"] == {}  # the rest of R1 waits
    second = clinic.deliver_subscribers(base=0).to_dict()
    assert second["delivered"] == {"ehr": 3}
    assert kinds(receiver.got, "R1") == [
        "enrollment.opened",
        "enrollment.transitioned",
        "observation.recorded",
    ]


def test_a_retry_waits_for_its_back_off(clinic: Clinic, receiver: Receiver) -> None:
    subscribe(clinic, receiver)
    journey(clinic, "B1")
    receiver.answers = [500]
    clinic.deliver_subscribers(base=3600)
    assert clinic.deliver_subscribers(base=3600).to_dict() == {"delivered": {}, "failed": {}, "dead": {}}
    assert receiver.got == []


def test_a_dead_letter_holds_its_enrollment_unless_told_to_skip(clinic: Clinic, receiver: Receiver) -> None:
    subscribe(clinic, receiver, "held")
    other = Receiver()
    try:
        made = clinic.add_subscriber("skipping", url=other.url, skip_dead=True)
        other.secret = made["secret"]
        journey(clinic, "D1")
        journey(clinic, "D2")
        receiver.answers = [400]  # D1's first message refused for good
        other.answers = [400]
        report = clinic.deliver_subscribers(base=0).to_dict()
        assert report["dead"] == {"held": 1, "skipping": 1}
        assert kinds(receiver.got, "D1") == [] and len(kinds(receiver.got, "D2")) == 3
        assert len(kinds(other.got, "D1")) == 2 and len(kinds(other.got, "D2")) == 3
        (letter,) = clinic.subscriber_action("dead_letters", "held")
        assert letter["message"]["type"] == "enrollment.opened" and letter["last_error"] == "HTTP 400"
        assert clinic.subscriber_action("retry", "held") == 1
        clinic.deliver_subscribers(base=0)
        assert kinds(receiver.got, "D1") == [
            "enrollment.opened",
            "enrollment.transitioned",
            "observation.recorded",
        ]
        assert clinic.subscriber_action("dead_letters", "held") == []
    finally:
        other.close()


def test_too_many_failures_make_a_dead_letter(clinic: Clinic, receiver: Receiver) -> None:
    subscribe(clinic, receiver, max_attempts=2)
    clinic.enroll("M1", "cervical-neurotomy", at="2026-01-05", actor="c", role="coordinator")
    receiver.answers = [500, 502]
    assert clinic.deliver_subscribers(base=0).to_dict()["failed"] == {"ehr": 1}
    assert clinic.deliver_subscribers(base=0).to_dict()["dead"] == {"ehr": 1}
    assert clinic.subscriber_action("dead_letters", "ehr")[0]["attempts"] == 2


def test_replay_sends_again_from_a_message(clinic: Clinic, receiver: Receiver) -> None:
    subscribe(clinic, receiver)
    journey(clinic, "P1")
    clinic.deliver_subscribers(base=0)
    second = receiver.got[1]["id"]
    clinic.subscriber_action("replay", "ehr", second)
    clinic.deliver_subscribers(base=0)
    assert [m["type"] for m in receiver.got[3:]] == ["enrollment.transitioned", "observation.recorded"]
    clinic.subscriber_action("replay", "ehr", "1")
    clinic.deliver_subscribers(base=0)
    assert len(receiver.got) == 3 + 2 + 3
    with pytest.raises(NotFound):
        clinic.subscriber_action("replay", "ehr", "no-such-message")
    with pytest.raises(NotFound):  # a digit to str.isdigit, not to int()
        clinic.subscriber_action("replay", "ehr", "²")


def test_two_delivery_processes_at_once_send_each_message_once(db_url: str, receiver: Receiver) -> None:
    with Clinic.open(db_url) as clinic:
        subscribe(clinic, receiver)
        for i in range(15):
            journey(clinic, f"T{i}")

    def deliver() -> None:
        pathway_cli("subscribers", "deliver", "--batch", "5", db=db_url)

    for _ in range(20):  # passes two at a time, racing for the one subscriber's lease
        if len(receiver.got) >= 45:
            break
        runs = [threading.Thread(target=deliver) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    ids = [m["id"] for m in receiver.got]
    assert len(ids) == len(set(ids)) == 45


def test_bad_subscribers_are_refused(clinic: Clinic) -> None:
    for options in (
        {},
        {"url": "ftp://x"},
        {"url": "http://x", "amqp": "amqp://x"},
        {"amqp": "amqp://localhost"},
        {"url": "http://x", "types": ["nonsense"]},
        {"url": "http://x", "max_attempts": 0},
    ):
        with pytest.raises(InvalidInput):
            clinic.add_subscriber("x", **options)
    clinic.add_subscriber("x", url="http://127.0.0.1:9/")
    with pytest.raises(InvalidInput, match="exists"):
        clinic.add_subscriber("x", url="http://127.0.0.1:9/")


def test_the_command_line(tmp_path, receiver: Receiver) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    Clinic.open(db).close()
    added = pathway_here("subscribers", "add", "ehr", "--url", receiver.url, db=db)
    assert added.returncode == 0, added.stderr
    receiver.secret = added.stdout.split("shown once): ")[1].strip()
    listed = pathway_here("subscribers", "list", db=db)
    assert "ehr" in listed.stdout and receiver.secret not in listed.stdout
    assert pathway_here("--role", "coordinator", "enroll", "C1", "--at", "2026-01-05", db=db).returncode == 0
    receiver.answers = [410]
    failed = pathway_here("subscribers", "deliver", "--json", db=db)
    assert failed.returncode == 1 and json.loads(failed.stdout)["dead"] == {"ehr": 1}
    letters = pathway_here("subscribers", "deadletters", "ehr", db=db)
    assert "HTTP 410" in letters.stdout
    assert pathway_here("subscribers", "retry", "ehr", db=db).returncode == 0
    assert pathway_here("subscribers", "deliver", db=db).returncode == 0
    assert [m["patient"] for m in receiver.got] == ["C1"]
    assert pathway_here("subscribers", "replay", "ehr", "--from", "1", db=db).returncode == 0
    assert pathway_here("subscribers", "deliver", db=db).returncode == 0
    assert len(receiver.got) == 2
    assert pathway_here("subscribers", "retry", "nobody", db=db).returncode == 4


def _rabbit() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _rabbit(), reason="RabbitMQ does not answer on 127.0.0.1:5672")
def test_rabbitmq_with_publisher_confirms(clinic: Clinic) -> None:
    import uuid

    import pika

    exchange = f"pathway-test-{uuid.uuid4().hex[:8]}"
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    try:
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange, routing_key="enrollment.*")
        clinic.add_subscriber("bus", amqp=url, exchange=exchange)
        assert "guest:***@" in clinic.subscribers()[0]["url"]
        journey(clinic, "Q1")
        report = clinic.deliver_subscribers(base=0).to_dict()
        # observation.recorded is routed nowhere (no queue bound for it): unroutable, retried.
        assert report["delivered"] == {"bus": 2} and report["failed"] == {"bus": 1}
        got = []
        for _ in range(2):
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            assert method is not None
            got.append((properties.message_id, json.loads(body)["type"]))
        assert [t for _, t in got] == ["enrollment.opened", "enrollment.transitioned"]
        assert all(mid for mid, _ in got)
        channel.queue_bind(queue, exchange, routing_key="observation.*")
        assert clinic.deliver_subscribers(base=0).to_dict()["delivered"] == {"bus": 1}
        method, _, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None and json.loads(body)["type"] == "observation.recorded"
    finally:
        channel.exchange_delete(exchange)
        connection.close()
