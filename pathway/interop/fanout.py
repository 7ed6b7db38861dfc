"""Delivering the outbox to every subscriber: in order per enrollment, at least once.

One pass takes the lease of each subscriber in turn (so two delivery processes never
serve one subscriber at once, and never send a message twice in the normal case), reads
the messages after its cursor and sends those for it:

- a webhook gets a POST of the envelope with the Standard Webhooks headers
  (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the
  subscriber's secret); a 2xx delivers it;
- an AMQP subscriber gets it published to its exchange (routing key: the message type,
  persistent, mandatory) and confirmed by the broker.

A failure (no answer, 5xx, 408, 429, a broker that does not confirm) is retried with
exponential back-off; a 4xx other than 408 and 429, or `max_attempts` failures, makes
it a dead letter. Until a failed message is delivered, that enrollment's later messages
wait (order is kept); a dead letter holds them too, unless the subscriber skips dead
letters (`--skip-dead`). `subscribers retry` revives dead letters, `replay` rewinds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pathway.domain.timeutil import utcnow
from pathway.interop.delivery import backoff_seconds, http_post
from pathway.store import subscribers as rows
from pathway.store.repository import Store

LEASE = timedelta(minutes=2)
RETRYABLE = {408, 429}
#: Send one message; return None when delivered, else (error, permanent).
Sender = Callable[[dict[str, Any], dict[str, Any]], "tuple[str, bool] | None"]


@dataclass
class FanoutReport:
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, name: str) -> None:
        table = getattr(self, kind)
        table[name] = table.get(name, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead}


def signed_headers(
    subscriber: dict[str, Any], message: dict[str, Any], body: str, now: datetime
) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    signature = Webhook(subscriber["secret"]).sign(message["id"], now, body)
    return {
        "content-type": "application/json",
        "webhook-id": message["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def send_webhook(
    subscriber: dict[str, Any], message: dict[str, Any], timeout: float = 10.0
) -> tuple[str, bool] | None:
    body = json.dumps(message, separators=(",", ":"))
    headers = signed_headers(subscriber, message, body, utcnow())
    try:
        status = http_post(subscriber["url"], body.encode(), headers, timeout)
    except (OSError, ValueError) as exc:
        return f"no answer ({type(exc).__name__})", False
    if 200 <= status < 300:
        return None
    permanent = 400 <= status < 500 and status not in RETRYABLE
    return f"HTTP {status}", permanent


class AmqpSender:
    """Publishes to one subscriber's exchange over one connection, with publisher confirms."""

    def __init__(self, subscriber: dict[str, Any]) -> None:
        import pika

        self.pika = pika
        self.connection = pika.BlockingConnection(pika.URLParameters(subscriber["url"]))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(subscriber["exchange"], exchange_type="topic", durable=True)
        self.channel.confirm_delivery()
        self.exchange = subscriber["exchange"]

    def __call__(self, _subscriber: dict[str, Any], message: dict[str, Any]) -> tuple[str, bool] | None:
        properties = self.pika.BasicProperties(
            content_type="application/json", message_id=message["id"], delivery_mode=2, type=message["type"]
        )
        try:
            self.channel.basic_publish(
                self.exchange, message["type"], json.dumps(message).encode(), properties, mandatory=True
            )
        except self.pika.exceptions.UnroutableError:
            return "unroutable: no queue is bound to the exchange for it", False
        except self.pika.exceptions.NackError:
            return "the broker did not confirm it", False
        return None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection
            self.connection.close()


def _for(subscriber: dict[str, Any], message: dict[str, Any]) -> bool:
    types = subscriber.get("types") or []
    return (not types or message.get("type") in types) and (
        not subscriber.get("pathway") or message.get("pathway") == subscriber["pathway"]
    )


def deliver(
    store: Store,
    *,
    batch: int = 200,
    base: float = 1.0,
    owner: str | None = None,
    senders: dict[str, Sender] | None = None,
) -> FanoutReport:
    """One pass over every subscriber (see the module's docstring)."""
    report = FanoutReport()
    owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    after = 0
    while True:
        now = utcnow()
        with store.write() as tx:
            subscriber = rows.lease(tx, owner, now, now + LEASE, after)
        if subscriber is None:
            return report
        after = subscriber["id"]
        try:
            _serve(store, subscriber, owner, batch, base, report, (senders or {}).get(subscriber["name"]))
        finally:
            with store.write() as tx:
                rows.release(tx, subscriber["id"], owner)


def _serve(
    store: Store,
    subscriber: dict[str, Any],
    owner: str,
    batch: int,
    base: float,
    report: FanoutReport,
    sender: Sender | None,
) -> None:
    name, sid = subscriber["name"], subscriber["id"]
    with store.read() as tx:
        messages = rows.pending(tx, sid, subscriber["cursor"], batch)
    if not messages:
        return
    amqp: AmqpSender | None = None
    held: set[int | None] = set()
    cursor, moving = subscriber["cursor"], True
    try:
        for m in messages:
            message, enrollment = m["payload"], m["enrollment_id"]
            settled = (
                not _for(subscriber, message)
                or m["delivered_at"] is not None
                or (m["dead_at"] is not None and subscriber["skip_dead"])
            )
            waiting = (
                m["dead_at"] is not None
                or enrollment in held
                or (m["next_attempt_at"] is not None and m["next_attempt_at"] > utcnow())
            )
            if settled or waiting:
                if waiting and not settled:
                    held.add(enrollment)
                    moving = False
                elif moving:
                    cursor = m["id"]
                continue
            if sender is None and subscriber["kind"] == "amqp" and amqp is None:
                try:
                    amqp = AmqpSender(subscriber)
                except Exception as exc:
                    _failed(
                        store,
                        subscriber,
                        m,
                        f"cannot reach the broker ({type(exc).__name__})",
                        False,
                        base,
                        report,
                    )
                    return
            send = sender or amqp or send_webhook
            outcome = send(subscriber, message)
            if outcome is None:
                with store.write() as tx:
                    rows.record(
                        tx, sid, m["id"], enrollment, delivered_at=utcnow(), attempts=(m["attempts"] or 0) + 1
                    )
                    if moving:
                        cursor = m["id"]
                    rows.change(tx, sid, cursor=cursor)
                    if not rows.renew(tx, sid, owner, utcnow() + LEASE):
                        return  # another process took the subscriber over: stop here
                report.count("delivered", name)
                continue
            error, permanent = outcome
            dead = _failed(store, subscriber, m, error, permanent, base, report)
            if not (dead and subscriber["skip_dead"]):
                held.add(enrollment)
                moving = False
            elif moving:
                cursor = m["id"]
        with store.write() as tx:
            rows.change(tx, sid, cursor=cursor)
    finally:
        if amqp is not None:
            amqp.close()


def _failed(
    store: Store,
    subscriber: dict[str, Any],
    m: dict[str, Any],
    error: str,
    permanent: bool,
    base: float,
    report: FanoutReport,
) -> bool:
    """Record a failed attempt; True when it made a dead letter."""
    attempts = (m["attempts"] or 0) + 1
    dead = permanent or attempts >= subscriber["max_attempts"]
    now = utcnow()
    with store.write() as tx:
        rows.record(
            tx,
            subscriber["id"],
            m["id"],
            m["enrollment_id"],
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=None if dead else now + timedelta(seconds=backoff_seconds(attempts, base)),
            dead_at=now if dead else None,
        )
    report.count("dead" if dead else "failed", subscriber["name"])
    return dead
