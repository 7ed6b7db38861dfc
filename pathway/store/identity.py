"""The service's users, bearer tokens and workspace sessions (schema revision 0006).

Functions over a `Tx`'s connection, like the bulk writers. Only hashes of tokens and
session cookies are stored; passwords are argon2 hashes made by the service layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from pathway.errors import InvalidInput
from pathway.store.tables import sessions, tokens, users
from pathway.store.tx import Tx


def add_user(tx: Tx, name: str, roles: Sequence[str], password_hash: str | None, at: datetime) -> int:
    try:
        result = tx.conn.execute(
            insert(users).values(name=name, roles=list(roles), password_hash=password_hash, created_at=at)
        )
    except IntegrityError:
        raise InvalidInput(f"user: {name!r} already exists (users list shows them)") from None
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def user(tx: Tx, name: str) -> dict[str, Any] | None:
    row = tx.conn.execute(select(users).where(users.c.name == name)).first()
    return dict(row._mapping) if row else None


def user_by_id(tx: Tx, user_id: int) -> dict[str, Any] | None:
    row = tx.conn.execute(select(users).where(users.c.id == user_id)).first()
    return dict(row._mapping) if row else None


def all_users(tx: Tx) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in tx.conn.execute(select(users).order_by(users.c.name))]


def change_user(tx: Tx, user_id: int, **values: Any) -> None:
    tx.conn.execute(update(users).where(users.c.id == user_id).values(**values))


def add_token(tx: Tx, user_id: int, digest: str, prefix: str, at: datetime, expires: datetime | None) -> int:
    result = tx.conn.execute(
        insert(tokens).values(user_id=user_id, hash=digest, prefix=prefix, created_at=at, expires_at=expires)
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


_TOKEN_OWNER = (
    select(
        tokens.c.id.label("token_id"),
        tokens.c.expires_at,
        tokens.c.revoked_at,
        users.c.id.label("user_id"),
        users.c.name,
        users.c.roles,
        users.c.disabled_at,
    )
    .join(users, users.c.id == tokens.c.user_id)
    .where(tokens.c.hash == bindparam("digest"))
)


def token_owner(tx: Tx, digest: str) -> dict[str, Any] | None:
    """The token with this hash and what of its user authentication reads."""
    row = tx.conn.execute(_TOKEN_OWNER, {"digest": digest}).first()
    return dict(row._mapping) if row else None


def tokens_of(tx: Tx, user_id: int | None = None) -> list[dict[str, Any]]:
    query = (
        select(tokens, users.c.name.label("user"))
        .join(users, users.c.id == tokens.c.user_id)
        .order_by(tokens.c.id)
    )
    if user_id is not None:
        query = query.where(tokens.c.user_id == user_id)
    return [dict(r._mapping) for r in tx.conn.execute(query)]


def revoke_tokens(tx: Tx, *, at: datetime, user_id: int | None = None, prefix: str | None = None) -> int:
    query = update(tokens).where(tokens.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(tokens.c.user_id == user_id)
    if prefix is not None:
        query = query.where(tokens.c.prefix == prefix)
    return int(tx.conn.execute(query.values(revoked_at=at)).rowcount)


def add_session(
    tx: Tx, digest: str, user_id: int, role: str, csrf: str, at: datetime, expires: datetime
) -> None:
    tx.conn.execute(
        insert(sessions).values(
            hash=digest, user_id=user_id, role=role, csrf=csrf, created_at=at, expires_at=expires
        )
    )


def session(tx: Tx, digest: str) -> dict[str, Any] | None:
    row = tx.conn.execute(select(sessions).where(sessions.c.hash == digest)).first()
    return dict(row._mapping) if row else None


def end_sessions(tx: Tx, *, at: datetime, digest: str | None = None, user_id: int | None = None) -> None:
    query = update(sessions).where(sessions.c.ended_at.is_(None))
    if digest is not None:
        query = query.where(sessions.c.hash == digest)
    if user_id is not None:
        query = query.where(sessions.c.user_id == user_id)
    tx.conn.execute(query.values(ended_at=at))
