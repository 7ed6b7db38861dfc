"""The SQLite hot path: Core statements compiled once, executed on the DBAPI connection.

On the handful of statements every command makes, SQLAlchemy's per-execution
work (cache-key lookup, execution context, result processing) costs several
times the SQLite call itself (bench/advance.py). Here the SQL text still comes
from the same Core statements, compiled for the SQLite dialect once; values and
rows are converted by the column types the tables use. The statements run
inside the transaction SQLAlchemy began on that connection. PostgreSQL keeps
the ordinary path, and the store contract tests run both.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement

from pathway.store.tables import UtcDateTime

_DIALECT = sqlite.dialect(paramstyle="qmark")


_PLAIN = frozenset({str, int, float, type(None)})


def _bind(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


@lru_cache(maxsize=8192)  # bulk writes repeat the same few times
def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes, 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
    (isoformat is several times faster than strftime)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _utc(value: Any) -> Any:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _converter(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UtcDateTime):
        return _utc
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Boolean):
        return _bool
    return None


class Prepared:
    """One statement compiled for SQLite, with its parameter order and row converters."""

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(
            dialect=_DIALECT, column_keys=list(column_keys) if column_keys is not None else None
        )
        self.sql = compiled.string
        self.names = tuple(getattr(compiled, "positiontup", None) or ())
        self._get = operator.itemgetter(*self.names) if self.names else (lambda _row: ())
        selected = getattr(statement, "selected_columns", None)
        self.keys: tuple[str, ...] = ()
        self.converters: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
        if selected is not None:
            self.keys = tuple(c.key for c in selected)
            found = ((c.key, _converter(c.type)) for c in selected)
            self.converters = tuple((k, conv) for k, conv in found if conv is not None)

    def _args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self._get(params)
        if len(self.names) == 1:
            values = (values,)
        if all(type(v) in _PLAIN for v in values):
            return tuple(values)
        return tuple(_bind(v) for v in values)

    def rows(self, dbapi: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = dbapi.execute(self.sql, self._args(params))
        result = []
        for row in cursor.fetchall():
            mapping = dict(zip(self.keys, row, strict=True))
            for key, convert in self.converters:
                mapping[key] = convert(mapping[key])
            result.append(mapping)
        return result

    def many(self, dbapi: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute a write once per row (executemany)."""
        dbapi.executemany(self.sql, [self._args(row) for row in rows])

    def run(self, dbapi: Any, params: Mapping[str, Any]) -> Any:
        """Execute a write; the cursor gives `rowcount` and `lastrowid`."""
        return dbapi.execute(self.sql, self._args(params))
