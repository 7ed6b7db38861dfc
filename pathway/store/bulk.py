"""Bulk enrollment (referral import): many enrollments in one transaction, as plain tuples.

Each new enrollment gets exactly the rows `Clinic.enroll` writes: its patient if
new (or the new display name of a known one), the enrollment in the pathway's
initial state, the enroll event (seq 1) and the `enrollment.opened` outbox
message with the same envelope, so nothing downstream can tell an imported
enrollment from an enrolled one.

Per row, SQLAlchemy Core costs several times the insert itself
(bench/import.py), so the rows are built in one tight loop and handed to the
driver's `executemany` with SQL written once per backend. Generated ids are
allocated up front so the four tables can be written without reading ids back:
on SQLite max(id)+1, ... inside the write transaction, which began IMMEDIATE
and so already holds the database's write lock (no other writer can insert in
between, and a collision would be a primary-key error, never a mix-up); on
PostgreSQL from the tables' own sequences.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from json.encoder import encode_basestring_ascii as _quote  # what json.dumps writes for a str
from typing import Any

from pathway.service.results import iso
from pathway.store.fastpath import sqlite_time
from pathway.store.repository import Tx

#: One enrollment to make: (source line, patient identifier, pathway id, pathway version,
#: profile, effective time, initial state, display name or None); a `referrals.Referral` is one.
NewEnrollment = tuple[int, str, str, int, str, datetime, str, str | None]

#: The SQLite page cache while a batch is written (negative: KiB, SQLite's convention).
SQLITE_CACHE_KIB = -65536
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid4_texts(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text: what str(uuid.uuid4()) gives, four times faster."""
    h = os.urandom(16 * count).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


class SqliteDriver:
    """Statements for the sqlite3 connection inside the transaction (see fastpath.py)."""

    json = "?"

    def __init__(self, tx: Tx) -> None:
        self.dbapi = tx.dbapi

    @staticmethod
    def time(value: datetime) -> Any:
        return sqlite_time(value)

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self.dbapi.execute(sql, params).fetchall())

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.dbapi.executemany(sql, rows)

    def patients(self, identifiers: list[str]) -> list[Any]:
        # json_each first (CROSS JOIN keeps that order): one index probe per identifier.
        return self.rows(
            "SELECT p.identifier, p.id, p.display_name FROM json_each(?) AS j "
            "CROSS JOIN patients AS p ON p.identifier = j.value",
            (json.dumps(identifiers),),
        )

    def enrollments(self, patient_ids: list[int]) -> list[Any]:
        return self.rows(
            "SELECT n.patient_id, n.pathway_id, n.opened_at, n.closed_at FROM json_each(?) AS j "
            "CROSS JOIN enrollments AS n ON n.patient_id = j.value",
            (json.dumps(patient_ids),),
        )

    def allocate(self, table: str, count: int) -> Iterable[int]:
        # Safe only because the transaction began IMMEDIATE: the write lock is already ours.
        (top,) = self.dbapi.execute(f"SELECT max(id) FROM {table}").fetchone()
        first = (top or 0) + 1
        return range(first, first + count)


class PostgresDriver:
    """The same through SQLAlchemy's connection to psycopg (still one executemany per table)."""

    json = "CAST(? AS jsonb)"

    def __init__(self, tx: Tx) -> None:
        self.conn = tx.conn

    @staticmethod
    def time(value: datetime) -> Any:
        return value

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql.replace("?", "%s"), params).all())

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql.replace("?", "%s"), rows)

    def patients(self, identifiers: list[str]) -> list[Any]:
        return self.rows(
            "SELECT identifier, id, display_name FROM patients WHERE identifier = ANY(?)", (identifiers,)
        )

    def enrollments(self, patient_ids: list[int]) -> list[Any]:
        return self.rows(
            "SELECT patient_id, pathway_id, opened_at, closed_at FROM enrollments WHERE patient_id = ANY(?)",
            (patient_ids,),
        )

    def allocate(self, table: str, count: int) -> Iterable[int]:
        rows = self.rows(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, ?)",
            (count,),
        )
        return [row[0] for row in rows]


Driver = SqliteDriver | PostgresDriver


def driver(tx: Tx) -> Driver:
    """Raw statements and id allocation for the backend of `tx` (also used by staged.py)."""
    return SqliteDriver(tx) if tx.dbapi is not None else PostgresDriver(tx)


def enroll_many(
    tx: Tx, batch: Sequence[NewEnrollment], *, actor: str, role: str, recorded: datetime
) -> tuple[int, int]:
    """Enroll each of `batch` (validated; one row per patient and pathway) unless the patient
    already has an open enrollment in the pathway or one opened at the same time (the same
    referral imported before). Returns (enrolled, skipped)."""
    db = driver(tx)
    if not isinstance(db, SqliteDriver):
        return _enroll(db, tx, batch, actor=actor, role=role, recorded=recorded)
    # A batch touches more index pages than SQLite's default 2 MB page cache holds; a larger
    # cache while it is written saves spilling and re-reading them (given back afterwards).
    (cache_size,) = db.dbapi.execute("PRAGMA cache_size").fetchone()
    db.dbapi.execute(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
    try:
        return _enroll(db, tx, batch, actor=actor, role=role, recorded=recorded)
    finally:
        db.dbapi.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _enroll(
    db: Driver,
    tx: Tx,
    batch: Sequence[NewEnrollment],
    *,
    actor: str,
    role: str,
    recorded: datetime,
) -> tuple[int, int]:
    identifiers = list(dict.fromkeys(r[1] for r in batch))
    known = {row[0]: (row[1], row[2]) for row in db.patients(identifiers)}
    todo: Sequence[NewEnrollment] = batch
    if known:
        wanted = {(known[r[1]][0], r[2]): db.time(r[5]) for r in batch if r[1] in known}
        blocked = {
            (patient_id, pathway)
            for patient_id, pathway, opened, closed in db.enrollments([k[0] for k in known.values()])
            if (patient_id, pathway) in wanted and (closed is None or opened == wanted[patient_id, pathway])
        }
        todo = [r for r in batch if r[1] not in known or (known[r[1]][0], r[2]) not in blocked]
    if not todo:
        return 0, len(batch)

    # Names as successive enrolls would leave them: the last one given wins.
    names = {r[1]: r[7] for r in todo if r[7]}
    patient_ids = {identifier: row[0] for identifier, row in known.items()}
    new = [identifier for identifier in identifiers if identifier not in known]
    stamp = db.time(recorded)
    patient_rows = []
    for identifier, patient_id in zip(new, db.allocate("patients", len(new)), strict=True):
        patient_ids[identifier] = patient_id
        patient_rows.append((patient_id, identifier, names.get(identifier), stamp))
    renamed = [
        (names[identifier], patient_id)
        for identifier, (patient_id, name) in known.items()
        if names.get(identifier, name) != name
    ]

    recorded_at = iso(recorded) or ""
    # The message text in pieces: what a batch shares, what a pathway shares, what a row adds.
    tail = f', "recorded_at": {_quote(recorded_at)}, "actor": {_quote(actor)}, "role": {_quote(role)}}}'
    times: dict[datetime, tuple[Any, str, str]] = {}
    shared: dict[tuple[str, int, str, str], tuple[str, str]] = {}
    enrollment_rows, event_rows, outbox_rows, messages = [], [], [], []
    for (_, patient, pathway, version, profile, at, state, _), enrollment_id, message_id in zip(
        todo, db.allocate("enrollments", len(todo)), uuid4_texts(len(todo)), strict=True
    ):
        when = times.get(at)
        if when is None:
            effective = iso(at) or ""
            when = times[at] = (db.time(at), effective, _quote(effective))
        stored, effective, effective_q = when
        key = (pathway, version, state, profile)
        common = shared.get(key)
        if common is None:
            common = shared[key] = (
                f'"pathway": {_quote(pathway)}, "pathway_version": {version}, "trigger": "enroll", '
                f'"from": null, "to": {_quote(state)}, "effective_at": ',
                json.dumps({"profile": profile, "source": "import"}),
            )
        middle, payload = common
        enrollment_rows.append(
            (enrollment_id, patient_ids[patient], pathway, version, profile, state, stored, stored, stored)
        )
        event_rows.append((enrollment_id, state, actor, role, stored, stamp, payload))
        messages.append(
            {
                "id": message_id,
                "type": "enrollment.opened",
                "enrollment": enrollment_id,
                "patient": patient,
                "pathway": pathway,
                "pathway_version": version,
                "trigger": "enroll",
                "from": None,
                "to": state,
                "effective_at": effective,
                "recorded_at": recorded_at,
                "actor": actor,
                "role": role,
            }
        )
        # Exactly json.dumps(message): same keys, order and quoting (a test compares them).
        body = (
            f'{{"id": "{message_id}", "type": "enrollment.opened", "enrollment": {enrollment_id}, '
            f'"patient": {_quote(patient)}, {middle}{effective_q}{tail}'
        )
        outbox_rows.append((message_id, enrollment_id, body, stamp))

    db.many(
        "INSERT INTO patients (id, identifier, display_name, created_at) VALUES (?, ?, ?, ?)", patient_rows
    )
    db.many("UPDATE patients SET display_name = ? WHERE id = ?", renamed)
    db.many(
        "INSERT INTO enrollments (id, patient_id, pathway_id, pathway_version, profile, state, "
        "entered_state_at, opened_at, last_event_at, last_seq, version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1)",
        enrollment_rows,
    )
    db.many(
        'INSERT INTO events (enrollment_id, seq, "trigger", from_state, to_state, actor, role, '
        "effective_at, recorded_at, reason, payload) "
        f"VALUES (?, 1, 'enroll', NULL, ?, ?, ?, ?, ?, NULL, {db.json})",
        event_rows,
    )
    db.many(
        "INSERT INTO outbox (message_id, type, enrollment_id, payload, created_at, attempts) "
        f"VALUES (?, 'enrollment.opened', ?, {db.json}, ?, 0)",
        outbox_rows,
    )
    tx.messages.extend(messages)
    return len(todo), len(batch) - len(todo)
