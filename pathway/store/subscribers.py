"""Subscribers and their deliveries (schema revision 0007): functions over a `Tx`.

A subscriber reads the outbox after its `cursor` (every message up to it is settled for
it: delivered, not for it, or a dead letter it skips); `deliveries` keeps the state of
each message it has tried. A lease on the subscriber row lets one delivery process at a
time serve it (PostgreSQL picks a free one with FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pathway.errors import InvalidInput
from pathway.store.tables import deliveries, outbox, subscribers
from pathway.store.tx import Tx


def add(tx: Tx, **values: Any) -> None:
    try:
        tx.conn.execute(insert(subscribers).values(**values))
    except IntegrityError:
        raise InvalidInput(f"subscriber: {values.get('name')!r} exists already (subscribers list)") from None


def one(tx: Tx, name: str) -> dict[str, Any] | None:
    row = tx.conn.execute(select(subscribers).where(subscribers.c.name == name)).first()
    return dict(row._mapping) if row else None


def every(tx: Tx) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in tx.conn.execute(select(subscribers).order_by(subscribers.c.name))]


def change(tx: Tx, subscriber_id: int, **values: Any) -> None:
    tx.conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def lease(tx: Tx, owner: str, now: datetime, until: datetime, after_id: int) -> dict[str, Any] | None:
    """Take the lease of the next enabled subscriber (id > `after_id`) nobody holds."""
    free = or_(
        subscribers.c.lease_until.is_(None),
        subscribers.c.lease_until < now,
        subscribers.c.lease_owner == owner,
    )
    query = (
        select(subscribers)
        .where(and_(subscribers.c.disabled_at.is_(None), subscribers.c.id > after_id, free))
        .order_by(subscribers.c.id)
        .limit(1)
    )
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = tx.conn.execute(query).first()
    if row is None:
        return None
    taken = tx.conn.execute(
        update(subscribers)
        .where(and_(subscribers.c.id == row.id, free))
        .values(lease_owner=owner, lease_until=until)
    )
    return dict(row._mapping) if taken.rowcount == 1 else None


def renew(tx: Tx, subscriber_id: int, owner: str, until: datetime) -> bool:
    done = tx.conn.execute(
        update(subscribers)
        .where(and_(subscribers.c.id == subscriber_id, subscribers.c.lease_owner == owner))
        .values(lease_until=until)
    )
    return bool(done.rowcount == 1)


def release(tx: Tx, subscriber_id: int, owner: str) -> None:
    tx.conn.execute(
        update(subscribers)
        .where(and_(subscribers.c.id == subscriber_id, subscribers.c.lease_owner == owner))
        .values(lease_owner=None, lease_until=None)
    )


def pending(tx: Tx, subscriber_id: int, cursor: int, limit: int) -> list[dict[str, Any]]:
    """Outbox messages after `cursor`, oldest first, each with this subscriber's delivery
    state (None where it has not tried it yet)."""
    query = (
        select(
            outbox.c.id,
            outbox.c.enrollment_id,
            outbox.c.payload,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.delivered_at,
            deliveries.c.dead_at,
        )
        .select_from(
            outbox.outerjoin(
                deliveries,
                and_(deliveries.c.outbox_id == outbox.c.id, deliveries.c.subscriber_id == subscriber_id),
            )
        )
        .where(outbox.c.id > cursor)
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in tx.conn.execute(query)]


def record(tx: Tx, subscriber_id: int, outbox_id: int, enrollment_id: int | None, **values: Any) -> None:
    """Set the delivery state of one message for one subscriber (made on first use)."""
    where = and_(deliveries.c.subscriber_id == subscriber_id, deliveries.c.outbox_id == outbox_id)
    done = tx.conn.execute(update(deliveries).where(where).values(**values))
    if done.rowcount == 0:
        tx.conn.execute(
            insert(deliveries).values(
                subscriber_id=subscriber_id, outbox_id=outbox_id, enrollment_id=enrollment_id, **values
            )
        )


def dead_letters(tx: Tx, subscriber_id: int) -> list[dict[str, Any]]:
    query = (
        select(deliveries, outbox.c.payload)
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .where(and_(deliveries.c.subscriber_id == subscriber_id, deliveries.c.dead_at.is_not(None)))
        .order_by(deliveries.c.outbox_id)
    )
    return [dict(r._mapping) for r in tx.conn.execute(query)]


def revive(tx: Tx, subscriber_id: int, outbox_id: int | None = None) -> int:
    """Make dead letters (one, or all) pending again."""
    where = and_(deliveries.c.subscriber_id == subscriber_id, deliveries.c.dead_at.is_not(None))
    if outbox_id is not None:
        where = and_(where, deliveries.c.outbox_id == outbox_id)
    done = tx.conn.execute(
        update(deliveries)
        .where(where)
        .values(dead_at=None, attempts=0, next_attempt_at=None, last_error=None)
    )
    return int(done.rowcount)


def rewind(tx: Tx, subscriber_id: int, from_id: int) -> None:
    """Deliver again every message from `from_id` on."""
    again = and_(deliveries.c.subscriber_id == subscriber_id, deliveries.c.outbox_id >= from_id)
    tx.conn.execute(
        update(deliveries)
        .where(again)
        .values(delivered_at=None, dead_at=None, attempts=0, next_attempt_at=None, last_error=None)
    )
    tx.conn.execute(
        update(subscribers).where(subscribers.c.id == subscriber_id).values(cursor=max(from_id - 1, 0))
    )


def lag(tx: Tx) -> dict[str, int]:
    """Messages after each subscriber's cursor, by subscriber name."""
    query = (
        select(subscribers.c.name, func.count(outbox.c.id))
        .select_from(subscribers.outerjoin(outbox, outbox.c.id > subscribers.c.cursor))
        .group_by(subscribers.c.name)
    )
    return {name: int(count) for name, count in tx.conn.execute(query)}


def last_outbox_id(tx: Tx) -> int:
    return int(tx.conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one())


def outbox_row_of(tx: Tx, message_id: str) -> int | None:
    found = tx.conn.execute(select(outbox.c.id).where(outbox.c.message_id == message_id)).scalar()
    return None if found is None else int(found)
