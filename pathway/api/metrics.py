"""Prometheus metrics of the service (`GET /metrics`): requests by route and status and
their latency, changes made (advances, records, ...), refusals by kind, and the outbox's
lag (messages not yet delivered, and the age of the oldest).

Routes are labelled by their template (`/v1/patients/{patient}`), never by the path, so no
patient identifier reaches the metrics. With several workers, `pathway serve` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory and every worker's counts are summed.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from pathway.domain.timeutil import utcnow
from pathway.errors import PathwayError


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pathway_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "pathway_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.changes = Counter("pathway_changes", "Changes made (advance, record, ...)", ["kind"], registry=r)
        self.refusals = Counter("pathway_refusals", "Advances refused, by error", ["error"], registry=r)
        self.outbox_pending = Gauge(
            "pathway_outbox_pending", "Outbox messages not yet delivered", multiprocess_mode="max", registry=r
        )
        self.outbox_age = Gauge(
            "pathway_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered outbox message",
            multiprocess_mode="max",
            registry=r,
        )

        self.subscriber_lag = Gauge(
            "pathway_subscriber_lag",
            "Outbox messages after each subscriber's cursor",
            ["subscriber"],
            multiprocess_mode="max",
            registry=r,
        )

        self._per_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def changed(self, kind: str) -> None:
        self.changes.labels(kind).inc()

    def refused(self, exc: BaseException) -> None:
        if isinstance(exc, PathwayError):
            self.refusals.labels(type(exc).__name__).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:  # a client's made-up method is not a new series
            method = "OTHER"
        key = (method, route, status)
        found = self._per_request.get(key)
        if found is None:  # `labels()` validates and locks: once per route and status
            found = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._per_request[key] = found
        found[0].inc()
        found[1].observe(seconds)

    def exposition(self, clinic: Any) -> bytes:
        pending = clinic.outbox(pending_only=True, limit=1)
        with clinic.store.read() as tx:
            self.outbox_pending.set(tx.outbox_count(pending_only=True))
        oldest = pending[0]["message"].get("recorded_at") if pending else None
        self.outbox_age.set(_age(oldest))
        for subscriber in clinic.subscribers():
            self.subscriber_lag.labels(subscriber["name"]).set(subscriber["lag"])
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _age(recorded: str | None) -> float:
    if not recorded:
        return 0.0
    try:
        return max(0.0, (utcnow() - datetime.fromisoformat(recorded.replace("Z", "+00:00"))).total_seconds())
    except ValueError:
        return 0.0
