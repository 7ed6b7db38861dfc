"""What the service keeps of requests (schema revision 0006): the first response to each
idempotency key, and the append-only log of who read a patient's data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from pathway.store.tables import access_log, idempotency_keys
from pathway.store.tx import Tx


def claim_key(tx: Tx, principal: str, key: str, request_hash: str, at: datetime) -> bool:
    """Record that `principal` started a request under `key`; False when the key is taken."""
    try:
        with tx.conn.begin_nested():
            tx.conn.execute(
                insert(idempotency_keys).values(
                    principal=principal, key=key, request_hash=request_hash, created_at=at
                )
            )
    except IntegrityError:
        return False
    return True


def key(tx: Tx, principal: str, key: str) -> dict[str, Any] | None:
    row = tx.conn.execute(
        select(idempotency_keys).where(
            and_(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        )
    ).first()
    return dict(row._mapping) if row else None


def reclaim_key(
    tx: Tx, principal: str, key: str, request_hash: str, at: datetime, was_created: datetime
) -> bool:
    """Take over an expired or abandoned key (only if nobody else took it meanwhile)."""
    result = tx.conn.execute(
        update(idempotency_keys)
        .where(
            and_(
                idempotency_keys.c.principal == principal,
                idempotency_keys.c.key == key,
                idempotency_keys.c.created_at == was_created,
            )
        )
        .values(request_hash=request_hash, created_at=at, status=None, headers=None, body=None)
    )
    return bool(result.rowcount == 1)


def finish_key(tx: Tx, principal: str, key: str, status: int, headers: dict[str, str], body: str) -> None:
    tx.conn.execute(
        update(idempotency_keys)
        .where(and_(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key))
        .values(status=status, headers=headers, body=body)
    )


def release_key(tx: Tx, principal: str, key: str, at: datetime) -> None:
    """Let the key be used again at once (the request failed on the server's side)."""
    tx.conn.execute(
        update(idempotency_keys)
        .where(and_(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key))
        .values(created_at=at, status=-1)
    )


def log_access(tx: Tx, *, at: datetime, actor: str, role: str, patients: list[str], what: str) -> None:
    """One entry per patient (a list shows many)."""
    if patients:
        rows = [{"at": at, "actor": actor, "role": role, "patient": p, "what": what} for p in patients]
        tx.conn.execute(insert(access_log), rows)


def accesses(tx: Tx, patient: str) -> list[dict[str, Any]]:
    query = (
        select(access_log.c.at, access_log.c.actor, access_log.c.role, access_log.c.what)
        .where(access_log.c.patient == patient)
        .order_by(access_log.c.at, access_log.c.id)
    )
    return [dict(r._mapping) for r in tx.conn.execute(query)]
