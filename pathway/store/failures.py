"""What the database's own errors mean to a person, as errors of the `PathwayError` tree.

No SQLAlchemy or driver exception leaves the store: a unique key another transaction
took first is a concurrent change (retry), a database busy beyond the wait is one too,
a value the database cannot hold (PostgreSQL refuses a NUL character, a number too
large) is invalid input, and anything else is a StoreError. Only the database's primary
message is kept: PostgreSQL's DETAIL and CONTEXT lines quote the row (an identifier, a
name) and stay out of what is shown.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pathway.errors import ConcurrencyError, InvalidInput, PathwayError, StoreError

#: PostgreSQL SQLSTATEs of a change that met another: unique key taken, serialization
#: failure, deadlock, lock not available.
_RACES = {"23505", "40001", "40P01", "55P03"}
_BUSY = ("database is locked", "database is busy", "database table is locked")


def primary_message(exc: BaseException) -> str:
    """The database's own one-line message, without details that quote data."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    text = getattr(diag, "message_primary", None) if diag is not None else None
    return " ".join(str(text or orig).split("\n")[0].split())


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlstate", None)


def translate(exc: BaseException) -> PathwayError:
    """The PathwayError a database error stands for (see the module's docstring)."""
    if isinstance(exc, PathwayError):
        return exc
    message = primary_message(exc)
    state = sqlstate(exc)
    lowered = message.lower()
    if any(busy in lowered for busy in _BUSY):
        return ConcurrencyError(
            "the database is busy: another change has held it longer than pathway waits; "
            "nothing was written: retry"
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return StoreError(
            "the database is read-only (read-only media, or no permission to write it): "
            "read commands work, changes cannot be made here"
        )
    if state in _RACES or "unique constraint failed" in lowered:
        return ConcurrencyError(
            "another change wrote the same thing at the same moment (a patient or an enrollment "
            "made twice); nothing was written: check and retry"
        )
    if state is not None and state.startswith("22"):  # data exception: NUL, out of range
        return InvalidInput(f"a value could not be stored: {message}")
    return StoreError(f"the database refused the change: {message}")


DATABASE_ERRORS = (DBAPIError, SQLAlchemyError, sqlite3.Error)
