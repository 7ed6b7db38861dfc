"""Writing many rows at once: one executemany per table, columns taken from `tables.py`.

Staged batches (`staged.py`) and bulk import (`bulk.py`) write their rows through a
`RowWriter`. Each table's row is a named tuple whose fields are that table's columns
as `tables.py` declares them (generated ids first where the writer allocates them),
so a column added to a table is a field every bulk writer must give, and the
INSERT statements are written from the same list.

Values are given as the database takes them: times through `RowWriter.time`
(text on SQLite, an aware datetime on PostgreSQL) and JSON columns as JSON text.
Ids are allocated up front (`allocate`): on SQLite max(id)+1, ... inside the write
transaction, which began IMMEDIATE and so already holds the database's write lock;
on PostgreSQL from the tables' own sequences.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Table

from pathway.store.fastpath import sqlite_time
from pathway.store.tables import enrollments, events, observations, outbox, patients

if TYPE_CHECKING:
    from pathway.store.repository import Tx

#: Tables in the order their rows are written (a row's foreign keys point at earlier ones),
#: and whether the writer allocates their ids (events and outbox rows are numbered by the
#: database as they are inserted, in the order given).
TABLES: tuple[tuple[Table, bool], ...] = (
    (patients, True),
    (enrollments, True),
    (observations, True),
    (events, False),
    (outbox, False),
)


def columns(table: Table, *, with_id: bool) -> tuple[str, ...]:
    """The columns a bulk writer gives for `table`, in the table's order."""
    return tuple(c.name for c in table.columns if with_id or c.name != "id")


def _default(column: Any) -> Any:
    """What the database would fill in for a column left out: its server default (false, 0)."""
    default = column.server_default
    if default is None:
        return None
    value = str(default.arg.text if hasattr(default.arg, "text") else default.arg).strip().lower()
    return {"false": False, "true": True}.get(value, int(value) if value.isdigit() else value)


def _row_type(table: Table, with_id: bool) -> Any:
    names = columns(table, with_id=with_id)
    defaults = tuple(_default(table.c[n]) for n in names)
    return namedtuple(f"{table.name.title()}Row", names, defaults=defaults)


#: One row of each table, as a named tuple of its columns (a field left out is what the
#: database would fill in: NULL, or the column's server default).
Row = {table.name: _row_type(table, with_id) for table, with_id in TABLES}
PatientRow, EnrollmentRow, ObservationRow, EventRow, OutboxRow = (
    Row["patients"],
    Row["enrollments"],
    Row["observations"],
    Row["events"],
    Row["outbox"],
)


class RowWriter:
    """Rows kept per table and written together by `flush`, inside the transaction of `tx`."""

    def __init__(self, tx: Tx) -> None:
        self.sqlite = tx.dbapi is not None
        self.dbapi = tx.dbapi
        self.conn = tx.conn
        self.rows: dict[str, list[tuple[Any, ...]]] = {table.name: [] for table, _ in TABLES}
        self.updates: list[tuple[str, list[tuple[Any, ...]]]] = []
        self._given: dict[str, int] = {}  # SQLite: the highest id handed out, per table

    # values as the database takes them ----------------------------------------------------
    def time(self, value: datetime) -> Any:
        return sqlite_time(value) if self.sqlite else value

    @staticmethod
    def json(value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    # reads and ids ------------------------------------------------------------------------
    def select(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Raw rows for `sql` with `?` placeholders."""
        if self.sqlite:
            return list(self.dbapi.execute(sql, params).fetchall())
        return list(self.conn.exec_driver_sql(sql.replace("?", "%s"), params).all())

    def patients(self, identifiers: list[str]) -> list[Any]:
        """(identifier, id, display_name) of those of `identifiers` already in the database."""
        if self.sqlite:  # json_each first (CROSS JOIN keeps that order): one probe per identifier
            return self.select(
                "SELECT p.identifier, p.id, p.display_name FROM json_each(?) AS j "
                "CROSS JOIN patients AS p ON p.identifier = j.value",
                (json.dumps(identifiers),),
            )
        return self.select(
            "SELECT identifier, id, display_name FROM patients WHERE identifier = ANY(?)", (identifiers,)
        )

    def enrollments(self, patient_ids: list[int]) -> list[Any]:
        """(patient_id, pathway_id, opened_at, closed_at) of every enrollment of those patients."""
        if self.sqlite:
            return self.select(
                "SELECT n.patient_id, n.pathway_id, n.opened_at, n.closed_at FROM json_each(?) AS j "
                "CROSS JOIN enrollments AS n ON n.patient_id = j.value",
                (json.dumps(patient_ids),),
            )
        return self.select(
            "SELECT patient_id, pathway_id, opened_at, closed_at FROM enrollments WHERE patient_id = ANY(?)",
            (patient_ids,),
        )

    def allocate(self, table: str, count: int) -> Iterable[int]:
        """`count` new ids for `table` (see the module's docstring for why this is safe)."""
        if self.sqlite:  # the transaction began IMMEDIATE: the write lock is already ours
            (top,) = self.dbapi.execute(f"SELECT max(id) FROM {table}").fetchone()
            # Rows kept for `flush` are not in the table yet: go on after the ids given out.
            first = max(top or 0, self._given.get(table, 0)) + 1
            self._given[table] = first + count - 1
            return range(first, first + count)
        rows = self.select(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, ?)", (count,)
        )
        return [row[0] for row in rows]

    # writes -------------------------------------------------------------------------------
    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows[table].append(row)

    def update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """An UPDATE (`?` placeholders) run once per row at `flush`, after the inserts."""
        if rows:
            self.updates.append((sql, rows))

    def flush(self) -> None:
        """Insert every row kept (one executemany per table, in foreign-key order), then run
        the updates; everything kept is forgotten."""
        for table, _ in TABLES:
            rows = self.rows[table.name]
            if rows:
                self._many(self._insert_sql(table, Row[table.name]._fields), rows)
                self.rows[table.name] = []
        for sql, rows in self.updates:
            self._many(sql, rows)
        self.updates = []

    def _insert_sql(self, table: Table, names: tuple[str, ...]) -> str:
        marks = ", ".join(
            "CAST(? AS jsonb)" if not self.sqlite and isinstance(table.c[n].type, JSON) else "?"
            for n in names
        )
        quoted = ", ".join(f'"{n}"' for n in names)
        return f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            self.dbapi.executemany(sql, rows)
        else:
            self.conn.exec_driver_sql(sql.replace("?", "%s"), rows)
