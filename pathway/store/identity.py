"""The service's users, bearer tokens and workspace sessions (schema revision 0006).

Functions over a `Tx`'s connection, like the bulk writers. Only hashes of tokens and
session cookies are stored; passwords are argon2 hashes made by the service layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from pathway.errors import InvalidInput
from pathway.store.failures import DATABASE_ERRORS, translate
from pathway.store.tables import sessions, tokens, users
from pathway.store.tx import Tx

if TYPE_CHECKING:
    from pathway.store.repository import Store


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


_OWNER_TIMES = ("expires_at", "revoked_at", "disabled_at")


@cache
def _token_owner_sql(dialect: Dialect) -> str:
    return str(_TOKEN_OWNER.compile(dialect=dialect))


def token_owner_now(store: Store, digest: str) -> dict[str, Any] | None:
    """`token_owner` in a transaction of its own, for the service's every request: from
    the store's token cache when it has one (`Store.cache_tokens`), else on PostgreSQL
    the one statement goes straight to the driver outside a transaction (one round trip
    instead of BEGIN, SELECT and ROLLBACK, a prepared statement, and none of
    SQLAlchemy's per-statement work, which cost more than the query); the SQL is the
    same Core statement's, and its times are made UTC as the column type makes them."""
    if store.backend != "postgresql" or store.in_batch:
        with store.read() as tx:
            return token_owner(tx, digest)
    cache = store.token_cache
    if cache is None:
        return _token_owner_direct(store, digest)
    found, generation = cache.get(digest)
    if found is None:
        found = _token_owner_direct(store, digest)
        if found is not None:
            cache.put(digest, found, generation)
    return found


def _token_owner_direct(store: Store, digest: str) -> dict[str, Any] | None:
    import psycopg
    from psycopg.rows import dict_row

    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.autocommit = True
        try:
            with driver.cursor(row_factory=dict_row) as cursor:
                cursor.execute(_token_owner_sql(store.engine.dialect), {"digest": digest}, prepare=True)
                row = cursor.fetchone()
        finally:
            driver.autocommit = False
    except (psycopg.Error, *DATABASE_ERRORS) as exc:
        raw.invalidate()  # the connection may be broken: the pool makes a new one
        raise translate(exc) from None
    finally:
        raw.close()
    if row is None:
        return None
    for name in _OWNER_TIMES:
        if row[name] is not None:
            row[name] = row[name].astimezone(UTC)
    return dict(row)


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
