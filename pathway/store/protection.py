"""The database's own protection of the audit trail, checked from outside (`pathway audit verify`).

Two checks: every protective trigger the migrations create is there (and, on
PostgreSQL, enabled); and each protected change is tried, in a savepoint that is
rolled back, and must be refused. A trigger edited to let changes through, a
function replaced by a no-op, or a connection allowed to bypass them, shows in the
second even when the names are all there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pathway.store.tx import Tx

#: The protective triggers schema revisions 0005 and 0006 leave, per backend.
TRIGGERS = {
    "sqlite": (
        "events_no_update",
        "events_no_delete",
        "events_no_replace",
        "observations_no_delete",
        "observations_only_mark_error",
        "observations_no_replace",
        "enrollments_follow_events",
        "enrollments_no_delete",
        "patients_no_delete",
        "patients_keep_identifier",
        "stays_no_update",
        "stays_no_delete",
        "access_log_no_update",
        "access_log_no_delete",
    ),
    "postgresql": (
        "events_append_only",
        "events_no_truncate",
        "observations_no_delete",
        "observations_no_truncate",
        "observations_only_mark_error",
        "enrollments_follow_events",
        "enrollments_no_delete",
        "enrollments_no_truncate",
        "patients_no_delete",
        "patients_no_truncate",
        "patients_keep_identifier",
        "stays_no_update",
        "stays_no_delete",
        "stays_no_truncate",
        "access_log_append_only",
        "access_log_no_truncate",
    ),
}

# (what it would do, the table it needs a row of, the statement; :id is that row's id).
_PROBES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "an event can be changed",
        "events",
        "UPDATE events SET reason = 'probe' WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    ("an event can be deleted", "events", "DELETE FROM events WHERE id = :id", ("sqlite", "postgresql")),
    (
        "an event can be replaced",
        "events",
        "INSERT OR REPLACE INTO events SELECT * FROM events WHERE id = :id",
        ("sqlite",),
    ),
    (
        "an observation's values can be changed",
        "observations",
        "UPDATE observations SET kind = kind || '.' WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    (
        "an observation can be deleted",
        "observations",
        "DELETE FROM observations WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    (
        "an observation can be replaced",
        "observations",
        "INSERT OR REPLACE INTO observations SELECT * FROM observations WHERE id = :id",
        ("sqlite",),
    ),
    (
        "an enrollment's state can change without an event",
        "enrollments",
        "UPDATE enrollments SET state = state || '.', last_seq = last_seq + 1 WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    (
        "an enrollment can be deleted",
        "enrollments",
        "DELETE FROM enrollments WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    (
        "a patient's identifier can be changed",
        "patients",
        "UPDATE patients SET identifier = identifier || '.' WHERE id = :id",
        ("sqlite", "postgresql"),
    ),
    ("a patient can be deleted", "patients", "DELETE FROM patients WHERE id = :id", ("sqlite", "postgresql")),
)
# TRUNCATE is not tried (it would wait for every other transaction on the table): its
# triggers are checked by name.


def missing_triggers(tx: Tx) -> list[str]:
    """Each protective trigger that is not there, or (PostgreSQL) not enabled, in words."""
    backend = tx.conn.dialect.name
    if backend == "postgresql":
        rows = tx.conn.execute(text("SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal")).all()
        state = {name: str(enabled) for name, enabled in rows}
    else:
        rows = tx.conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all()
        state = {row[0]: "O" for row in rows}
    found = []
    for name in TRIGGERS[backend]:
        if name not in state:
            found.append(f"the protective trigger {name} is missing")
        elif state[name] in ("D", "R"):  # disabled, or firing only for replicas
            found.append(f"the protective trigger {name} is disabled")
    return found


def unrefused_changes(tx: Tx) -> list[str]:
    """Each protected change the database let through when tried (each tried in a savepoint
    that is rolled back, on a row the table has; a table with no rows is not tried)."""
    backend = tx.conn.dialect.name
    found = []
    for what, table, statement, backends in _PROBES:
        if backend not in backends:
            continue
        row_id = tx.conn.execute(text(f"SELECT min(id) FROM {table}")).scalar()
        if row_id is None:
            continue
        savepoint = tx.conn.begin_nested()
        try:
            tx.conn.execute(text(statement), {"id": row_id})
            found.append(f"the database let a change through: {what}")
        except DBAPIError:
            pass  # refused, as it must be
        finally:
            savepoint.rollback()
    return found


def findings(tx: Tx) -> list[str]:
    return [*missing_triggers(tx), *unrefused_changes(tx)]


def describe(tx: Tx) -> dict[str, Any]:
    """Which protective triggers there are, for `pathway audit verify --json`."""
    return {"backend": tx.conn.dialect.name, "expected": list(TRIGGERS[tx.conn.dialect.name])}
