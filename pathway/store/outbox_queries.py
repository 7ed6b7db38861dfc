"""The outbox's delivery state: which messages are pending, due, delivered or failing.

A mixin of `tx.Tx` (it runs in the transaction's connection).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from pathway.store.tables import outbox


class OutboxQueries:
    conn: Connection

    def outbox_messages(
        self,
        *,
        pending_only: bool = False,
        limit: int | None = None,
        due_at: datetime | None = None,
        after_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Outbox rows oldest first; `due_at` keeps pending ones whose retry time has come;
        `after_id` pages on from a row."""
        query = select(outbox).order_by(outbox.c.id)
        if after_id is not None:
            query = query.where(outbox.c.id > after_id)
        if pending_only or due_at is not None:
            query = query.where(outbox.c.delivered_at.is_(None))
        if due_at is not None:
            query = query.where((outbox.c.next_attempt_at.is_(None)) | (outbox.c.next_attempt_at <= due_at))
        if limit is not None:
            query = query.limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def outbox_pending_enrollments_before(self, message_id: int) -> set[int]:
        """Enrollments with an undelivered message older than `message_id` (order is kept)."""
        rows = self.conn.execute(
            select(outbox.c.enrollment_id)
            .where(outbox.c.delivered_at.is_(None), outbox.c.id < message_id)
            .distinct()
        )
        return {r[0] for r in rows}

    def mark_delivered(self, row_id: int, at: datetime) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.delivered_at.is_(None))
            .values(delivered_at=at, attempts=outbox.c.attempts + 1, last_error=None, next_attempt_at=None)
        )

    def mark_failed(self, row_id: int, error: str, retry_at: datetime) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.delivered_at.is_(None))
            .values(attempts=outbox.c.attempts + 1, last_error=error[:1000], next_attempt_at=retry_at)
        )

    def outbox_count(self, *, pending_only: bool = False) -> int:
        query = select(func.count()).select_from(outbox)
        if pending_only:
            query = query.where(outbox.c.delivered_at.is_(None))
        return int(self.conn.execute(query).scalar_one())
