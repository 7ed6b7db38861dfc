"""Subscribers of the outbox: webhooks (signed per the Standard Webhooks spec with a secret
of their own, shown once) and AMQP exchanges (RabbitMQ, publisher confirms), each with
its own cursor, filters (message types, one pathway), retries, dead letters and replay.

`fanout.deliver` sends; this module keeps the list.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pathway.domain import envelopes
from pathway.domain.timeutil import iso, utcnow
from pathway.errors import InvalidInput, NotFound
from pathway.store import subscribers as rows
from pathway.store.repository import Store


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def add(
    store: Store,
    name: str,
    *,
    url: str | None = None,
    amqp: str | None = None,
    exchange: str | None = None,
    types: Sequence[str] = (),
    pathway: str | None = None,
    skip_dead: bool = False,
    max_attempts: int = 8,
) -> dict[str, Any]:
    """Add a subscriber; the result holds its signing secret (webhooks), shown only here."""
    if not name or len(name) > 100 or not name.isprintable() or name.strip() != name:
        raise InvalidInput("subscriber: a name of 1 to 100 printable characters")
    if (url is None) == (amqp is None):
        raise InvalidInput("give either --url URL (a webhook) or --amqp URL --exchange X")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput("--url: an http:// or https:// URL")
    if amqp is not None:
        if urlsplit(amqp).scheme not in ("amqp", "amqps"):
            raise InvalidInput("--amqp: an amqp:// or amqps:// URL")
        if not exchange:
            raise InvalidInput("--exchange: name the exchange to publish to")
    unknown = [t for t in types if t not in envelopes.TYPES]
    if unknown:
        raise InvalidInput(
            f"--type: unknown message type {unknown[0]!r} (types: {', '.join(envelopes.TYPES)})"
        )
    if not 1 <= max_attempts <= 100:
        raise InvalidInput("--max-attempts: from 1 to 100")
    secret = new_secret() if url is not None else None
    with store.write() as tx:
        rows.add(
            tx,
            name=name,
            kind="webhook" if url is not None else "amqp",
            url=url or amqp,
            exchange=exchange,
            secret=secret,
            types=list(types) or None,
            pathway=pathway,
            skip_dead=skip_dead,
            max_attempts=max_attempts,
            created_at=utcnow(),
            # A new subscriber starts with what is written from now on (replay --from 1
            # sends the history).
            cursor=rows.last_outbox_id(tx),
        )
        found = public(rows.one(tx, name) or {})
    return {**found, "secret": secret}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A subscriber as listed: never its secret, nor a password in its URL."""
    url = str(row.get("url") or "")
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return {
        "name": row.get("name"),
        "kind": row.get("kind"),
        "url": url,
        "exchange": row.get("exchange"),
        "types": row.get("types") or [],
        "pathway": row.get("pathway"),
        "skip_dead": bool(row.get("skip_dead")),
        "max_attempts": row.get("max_attempts"),
        "cursor": row.get("cursor"),
        "disabled_at": iso(row.get("disabled_at")),
    }


def listed(store: Store) -> list[dict[str, Any]]:
    with store.read() as tx:
        lag = rows.lag(tx)
        return [{**public(r), "lag": lag.get(r["name"], 0)} for r in rows.every(tx)]


def _named(tx: Any, name: str) -> dict[str, Any]:
    found = rows.one(tx, name)
    if found is None:
        raise NotFound(f"subscriber: no subscriber {name!r} (subscribers list)")
    return found


def disable(store: Store, name: str, *, enable: bool = False) -> dict[str, Any]:
    with store.write() as tx:
        found = _named(tx, name)
        rows.change(tx, found["id"], disabled_at=None if enable else utcnow())
        return public(rows.one(tx, name) or {})


def dead_letters(store: Store, name: str) -> list[dict[str, Any]]:
    with store.read() as tx:
        found = _named(tx, name)
        return [
            {
                "message": d["payload"],
                "attempts": d["attempts"],
                "last_error": d["last_error"],
                "dead_at": iso(d["dead_at"]),
            }
            for d in rows.dead_letters(tx, found["id"])
        ]


def retry(store: Store, name: str, message_id: str | None = None) -> int:
    """Make the subscriber's dead letters (or the one with this message id) pending again."""
    with store.write() as tx:
        found = _named(tx, name)
        if message_id is None:
            return rows.revive(tx, found["id"])
        letters = [d for d in rows.dead_letters(tx, found["id"]) if d["payload"].get("id") == message_id]
        if not letters:
            raise NotFound("message: not among the subscriber's dead letters (subscribers deadletters NAME)")
        return rows.revive(tx, found["id"], letters[0]["outbox_id"])


def replay(store: Store, name: str, start: str) -> dict[str, Any]:
    """Send again every message from `start` on: a message id (as `outbox list --json`
    shows it) or an outbox row number (1 is the first message ever written)."""
    with store.write() as tx:
        found = _named(tx, name)
        if start.isascii() and start.isdigit():  # "²" is a digit to str.isdigit, not to int
            from_id = int(start)
        else:
            row = rows.outbox_row_of(tx, start)
            if row is None:
                raise NotFound("--from: no outbox message with that id (outbox list --json shows them)")
            from_id = row
        if from_id < 1:
            raise InvalidInput("--from: a message id, or an outbox row number from 1")
        rows.rewind(tx, found["id"], from_id)
        return public(rows.one(tx, name) or {})
