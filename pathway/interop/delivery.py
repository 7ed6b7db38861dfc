"""Delivering outbox messages over HTTP: in order per enrollment, at least once.

Every committed change wrote its message in the same transaction (see
`Clinic`), so nothing is lost. A deliverer POSTs pending messages oldest first
and marks one delivered only on a 2xx answer; a failure schedules a retry with
exponential back-off and holds back the later messages of that enrollment, so
a receiver sees each enrollment's changes in order. A message may arrive twice
(the process can die between the answer and the mark): receivers deduplicate
on the `id` field (also sent as the `X-Pathway-Message-Id` header).
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pathway.domain.timeutil import utcnow
from pathway.store.repository import Store

#: POST `body` to `url`; return the HTTP status, or raise OSError when there is no answer.
Poster = Callable[[str, bytes, dict[str, str], float], int]

MAX_BACKOFF_SECONDS = 300.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would follow a 301-303 with a GET,
    dropping the message, and the GET's 200 would mark it delivered."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the redirect's status


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def backoff_seconds(attempts: int, base: float) -> float:
    """Seconds before retry number `attempts` (1, 2, 4, ... times `base`, capped at 5 minutes)."""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass
class DeliveryReport:
    """What one pass did."""

    delivered: int = 0
    failed: int = 0
    held_back: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.held_back += other.held_back
        self.errors += other.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "held_back": self.held_back,
            "errors": self.errors,
        }


def deliver_once(
    store: Store,
    url: str,
    *,
    batch: int = 500,
    timeout: float = 10.0,
    base_delay: float = 1.0,
    post: Poster = http_post,
    now: Callable[[], datetime] = utcnow,
) -> DeliveryReport:
    """One pass: the oldest `batch` pending messages that may be sent now (see `_sendable`)."""
    report = DeliveryReport()
    rows, report.held_back = _sendable(store, batch, now())
    failed: set[int | None] = set()
    for row in rows:
        enrollment = row["enrollment_id"]
        if enrollment in failed:  # an earlier message of it failed in this pass
            report.held_back += 1
            continue
        body = json.dumps(row["payload"], sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Pathway-Message-Id": row["message_id"],
            "X-Pathway-Message-Type": row["type"],
        }
        try:
            status = post(url, body, headers, timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
            if 300 <= status < 400:
                error = f"HTTP {status} (a redirect: not followed; give the URL that takes the POST)"
        except (OSError, http.client.HTTPException) as exc:  # no answer, or not an HTTP one
            error = f"no answer: {getattr(exc, 'reason', None) or type(exc).__name__}"
        with store.write() as wtx:
            if error is None:
                wtx.mark_delivered(row["id"], now())
            else:
                attempts = int(row["attempts"]) + 1
                retry_at = now() + timedelta(seconds=backoff_seconds(attempts, base_delay))
                wtx.mark_failed(row["id"], error, retry_at)
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1
            report.errors.append(f"message {row['message_id']}: {error}")
            failed.add(enrollment)
    return report


def _sendable(store: Store, batch: int, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """The oldest `batch` pending messages that may be sent now: due, and with no earlier
    pending message of their enrollment waiting for its retry (order per enrollment).
    Pages on past the held-back ones, so one enrollment whose messages keep failing
    cannot stop the others. Returns (messages, how many were held back)."""
    chosen: list[dict[str, Any]] = []
    held: set[int | None] = set()
    held_back = 0
    after: int | None = None
    while len(chosen) < batch:
        with store.read() as tx:
            rows = tx.outbox_messages(pending_only=True, limit=batch, after_id=after)
        for row in rows:
            after = row["id"]
            enrollment, due = row["enrollment_id"], row["next_attempt_at"]
            if enrollment in held or (due is not None and due > now):
                held.add(enrollment)  # waiting for its retry time; keep the order behind it
                held_back += 1
            else:
                chosen.append(row)
                if len(chosen) == batch:
                    break
        if len(rows) < batch:
            break
    return chosen, held_back


def deliver(
    store: Store,
    url: str,
    *,
    follow: bool = False,
    interval: float = 2.0,
    stop: threading.Event | None = None,
    on_pass: Callable[[DeliveryReport], None] | None = None,
    **options: Any,
) -> DeliveryReport:
    """Deliver until nothing is due (or, with `follow`, until `stop` is set)."""
    total = DeliveryReport()
    stop = stop or threading.Event()
    while not stop.is_set():
        report = deliver_once(store, url, **options)
        total.add(report)
        if on_pass is not None and (report.delivered or report.failed):
            on_pass(report)
        if not follow:
            if report.delivered == 0 or report.failed:
                break
            continue  # more may be waiting beyond this batch
        if report.delivered == 0:
            stop.wait(interval)
    return total
