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
from typing import Any, Protocol

from sqlalchemy import JSON, Table

from pathway.store.fastpath import sqlite_time
from pathway.store.tables import enrollments, events, observations, outbox, patients


class Connected(Protocol):
    """What a row writer needs of the transaction it writes in (a `tx.Tx`)."""

    dbapi: Any  # the sqlite3 connection on SQLite, else None
    conn: Any  # the SQLAlchemy connection


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


def row_type(table: Table, *, with_id: bool, leave_out: tuple[str, ...] = ()) -> Any:
    """A named tuple of `table`'s columns (its generated id first when `with_id`), but those in
    `leave_out`, which the database fills in (NULL, or the server default): a writer whose
    rows never set a column need not pass it (an insert is the cheaper for it)."""
    for name in leave_out:
        column = table.c[name]
        if not (column.nullable or column.server_default is not None):
            raise ValueError(f"{table.name}.{name} must be given: it has no default")
    names = tuple(n for n in columns(table, with_id=with_id) if n not in leave_out)
    defaults = tuple(_default(table.c[n]) for n in names)
    found = namedtuple(f"{table.name.title()}Row", names, defaults=defaults)  # type: ignore[misc]
    found.table = table.name  # type: ignore[attr-defined]
    return found


#: One row of each table, as a named tuple of its columns (a field left out is what the
#: database would fill in: NULL, or the column's server default).
Row = {table.name: row_type(table, with_id=with_id) for table, with_id in TABLES}
#: What a new row gives: a new enrollment is neither held nor closed, a new observation not
#: yet corrected, a new message not yet tried; the database fills in the rest.
NewEnrollmentRow = row_type(enrollments, with_id=True, leave_out=("held_from", "closed_at"))
NewObservationRow = row_type(
    observations,
    with_id=False,
    leave_out=(
        "entered_in_error",
        "error_reason",
        "error_actor",
        "error_at",
        "error_role",
        "error_recorded_at",
    ),
)
NewMessageRow = row_type(
    outbox, with_id=False, leave_out=("delivered_at", "attempts", "last_error", "next_attempt_at")
)

PatientRow, EnrollmentRow, ObservationRow, EventRow, OutboxRow = (
    Row["patients"],
    Row["enrollments"],
    Row["observations"],
    Row["events"],
    Row["outbox"],
)


class RowWriter:
    """Rows kept per table and written together by `flush`, inside the transaction of `tx`."""

    def __init__(self, tx: Connected) -> None:
        self.sqlite = tx.dbapi is not None
        self.dbapi = tx.dbapi
        self.conn = tx.conn
        self.rows: dict[Any, list[tuple[Any, ...]]] = {}  # row type -> rows of that type
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
    def add(self, row: Any) -> None:
        """Keep `row`, a named tuple made by `row_type` (its type says the table and columns)."""
        kept = self.rows.get(type(row))
        if kept is None:
            kept = self.rows[type(row)] = []
        kept.append(row)

    def adder(self, kind: Any) -> Any:
        """The `append` of the list kept for rows of type `kind` (for a tight loop)."""
        return self.rows.setdefault(kind, []).append

    def update(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """An UPDATE (`?` placeholders) run once per row at `flush`, after the inserts."""
        if rows:
            self.updates.append((sql, rows))

    def flush(self) -> None:
        """Insert every row kept (one executemany per table, in foreign-key order), then run
        the updates; everything kept is forgotten."""
        for table, _ in TABLES:
            for kind, rows in list(self.rows.items()):
                if kind.table == table.name and rows:
                    self._many(self._insert_sql(table, kind._fields), rows)
        self.rows = {}
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
