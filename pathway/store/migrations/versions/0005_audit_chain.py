"""A tamper-evident audit trail, closed bypasses, reopening, clinic settings, referral identity.

- Every event, observation and correction carries its place in its enrollment's hash
  chain and its hash (`pathway.domain.chain`); the enrollment keeps the chain's head.
  Rows already stored are chained here, in the order they were written.
- SQLite: `INSERT OR REPLACE` into events or observations replaced a row without firing
  the DELETE triggers; a BEFORE INSERT trigger now refuses to insert over a row.
- Enrollments change only together with the event that changes them (the event is
  written first and must match the new state), and are never deleted; patients are
  never deleted and keep their identifier. PostgreSQL also refuses TRUNCATE on both.
- A reopen event names the seq of the closing event it voids (`events.voids`); the
  `stays` the database keeps leave the voided stay out.
- `settings` holds clinic-wide settings (the clinic's time zone, FHIR systems);
  patients keep the identifier system of a FHIR referral, enrollments the referral.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from pathway.domain import chain

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_0003 = importlib.import_module("pathway.store.migrations.versions.0003_stays")
_0004 = importlib.import_module("pathway.store.migrations.versions.0004_correction_audit")

# --- SQLite ------------------------------------------------------------------------------

_STATE_COLUMNS = (
    "state",
    "held_from",
    "entered_state_at",
    "closed_at",
    "last_event_at",
    "last_seq",
    "pathway_version",
)
_FIXED_COLUMNS = ("id", "patient_id", "pathway_id", "profile", "opened_at")


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


# Where the stay an event closes began: the latest earlier event that changed the state, a
# voided one and a reopen left out (the reopened state's stay goes on from its entry).
_ENTERED_LIVE = """(SELECT p.effective_at FROM events p
                WHERE p.enrollment_id = NEW.enrollment_id AND p.seq < NEW.seq
                  AND (p.from_state IS NULL OR p.from_state <> p.to_state) AND p.voids IS NULL
                  AND NOT EXISTS (SELECT 1 FROM events v
                                  WHERE v.enrollment_id = p.enrollment_id AND v.voids = p.seq)
                ORDER BY p.seq DESC LIMIT 1)"""

SQLITE_TRIGGERS = [
    """CREATE TRIGGER events_no_replace BEFORE INSERT ON events
       WHEN EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
         OR EXISTS (SELECT 1 FROM events WHERE enrollment_id = NEW.enrollment_id AND seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'events are append-only: a row may not be replaced'); END""",
    """CREATE TRIGGER observations_no_replace BEFORE INSERT ON observations
       WHEN EXISTS (SELECT 1 FROM observations WHERE id = NEW.id)
       BEGIN SELECT RAISE(ABORT, 'observations are append-only: a row may not be replaced'); END""",
    f"""CREATE TRIGGER enrollments_follow_events BEFORE UPDATE ON enrollments
       WHEN {_changed(_FIXED_COLUMNS)} OR NEW.version < OLD.version
         OR (({_changed(_STATE_COLUMNS)})
             AND NOT (NEW.last_seq = OLD.last_seq + 1 AND EXISTS (
                 SELECT 1 FROM events e WHERE e.enrollment_id = NEW.id AND e.seq = NEW.last_seq
                   AND e.to_state = NEW.state AND e.effective_at = NEW.last_event_at)))
       BEGIN SELECT RAISE(ABORT, 'an enrollment changes only with the event that changes it'); END""",
    """CREATE TRIGGER enrollments_no_delete BEFORE DELETE ON enrollments
       BEGIN SELECT RAISE(ABORT, 'enrollments are never deleted'); END""",
    """CREATE TRIGGER patients_no_delete BEFORE DELETE ON patients
       BEGIN SELECT RAISE(ABORT, 'patients are never deleted'); END""",
    """CREATE TRIGGER patients_keep_identifier BEFORE UPDATE ON patients
       WHEN NEW.id IS NOT OLD.id OR NEW.identifier IS NOT OLD.identifier
       BEGIN SELECT RAISE(ABORT, 'a patient keeps their identifier'); END""",
    # A reopen takes away the stay the closing event it voids had closed.
    """CREATE TRIGGER events_reopen_stay AFTER INSERT ON events WHEN NEW.voids IS NOT NULL
       BEGIN
         DELETE FROM stays WHERE event_id =
           (SELECT id FROM events WHERE enrollment_id = NEW.enrollment_id AND seq = NEW.voids);
       END""",
]

SQLITE_STAYS = [
    f"""CREATE TRIGGER events_close_stay AFTER INSERT ON events
        WHEN NEW.from_state IS NOT NULL AND NEW.from_state <> NEW.to_state AND NEW.voids IS NULL
        BEGIN
          INSERT INTO stays (state, days, event_id, left_at, entered_at, pathway_id, enrollment_id)
          SELECT NEW.from_state, julianday(NEW.effective_at) - julianday(s.entered), NEW.id,
                 NEW.effective_at, s.entered, n.pathway_id, NEW.enrollment_id
          FROM (SELECT {_ENTERED_LIVE} AS entered) s, enrollments n
          WHERE n.id = NEW.enrollment_id AND s.entered IS NOT NULL;
        END""",
    """CREATE TRIGGER stays_no_delete BEFORE DELETE ON stays
       WHEN NOT EXISTS (SELECT 1 FROM events c JOIN events v
                          ON v.enrollment_id = c.enrollment_id AND v.voids = c.seq
                        WHERE c.id = OLD.event_id)
       BEGIN SELECT RAISE(ABORT, 'stays are append-only: DELETE is not allowed'); END""",
]


def _sqlite_mark_error() -> str:
    return """CREATE TRIGGER observations_only_mark_error BEFORE UPDATE ON observations
       WHEN NOT (
            OLD.entered_in_error = 0 AND NEW.entered_in_error = 1
            AND NEW.error_reason IS NOT NULL AND NEW.error_actor IS NOT NULL
            AND NEW.error_at IS NOT NULL AND NEW.error_role IS NOT NULL
            AND NEW.error_recorded_at IS NOT NULL
            AND NEW.error_chain_seq IS NOT NULL AND NEW.error_hash IS NOT NULL
            AND NEW.id IS OLD.id AND NEW.enrollment_id IS OLD.enrollment_id
            AND NEW.kind IS OLD.kind AND NEW.data IS OLD.data
            AND NEW.effective_at IS OLD.effective_at AND NEW.recorded_at IS OLD.recorded_at
            AND NEW.actor IS OLD.actor AND NEW.role IS OLD.role
            AND NEW.chain_seq IS OLD.chain_seq AND NEW.hash IS OLD.hash)
       BEGIN SELECT RAISE(ABORT,
            'observations are append-only: only marking entered-in-error is allowed'); END"""


# --- PostgreSQL --------------------------------------------------------------------------

POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION pathway_enrollment_follows_events() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF ({", ".join("NEW." + c for c in _FIXED_COLUMNS)})
              IS DISTINCT FROM ({", ".join("OLD." + c for c in _FIXED_COLUMNS)})
            OR NEW.version < OLD.version
            OR (({", ".join("NEW." + c for c in _STATE_COLUMNS)})
                  IS DISTINCT FROM ({", ".join("OLD." + c for c in _STATE_COLUMNS)})
                AND NOT (NEW.last_seq = OLD.last_seq + 1 AND EXISTS (
                  SELECT 1 FROM events e WHERE e.enrollment_id = NEW.id AND e.seq = NEW.last_seq
                    AND e.to_state = NEW.state AND e.effective_at = NEW.last_event_at)))
         THEN
           RAISE EXCEPTION 'an enrollment changes only with the event that changes it';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER enrollments_follow_events BEFORE UPDATE ON enrollments
       FOR EACH ROW EXECUTE FUNCTION pathway_enrollment_follows_events()""",
    """CREATE TRIGGER enrollments_no_delete BEFORE DELETE ON enrollments
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER enrollments_no_truncate BEFORE TRUNCATE ON enrollments
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER patients_no_delete BEFORE DELETE ON patients
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER patients_no_truncate BEFORE TRUNCATE ON patients
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE FUNCTION pathway_patient_keeps_identifier() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF (NEW.id, NEW.identifier) IS DISTINCT FROM (OLD.id, OLD.identifier) THEN
           RAISE EXCEPTION 'a patient keeps their identifier';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER patients_keep_identifier BEFORE UPDATE ON patients
       FOR EACH ROW EXECUTE FUNCTION pathway_patient_keeps_identifier()""",
    # As its owner (SECURITY DEFINER): the service's role may not DELETE stays itself.
    """CREATE FUNCTION pathway_reopen_stay() RETURNS trigger LANGUAGE plpgsql
       SECURITY DEFINER SET search_path = public AS $$
       BEGIN
         DELETE FROM stays WHERE event_id =
           (SELECT id FROM events WHERE enrollment_id = NEW.enrollment_id AND seq = NEW.voids);
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER events_reopen_stay AFTER INSERT ON events
       FOR EACH ROW WHEN (NEW.voids IS NOT NULL) EXECUTE FUNCTION pathway_reopen_stay()""",
]

POSTGRESQL_STAYS = [
    f"""CREATE OR REPLACE FUNCTION pathway_close_stay() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE entered TIMESTAMP WITH TIME ZONE;
       BEGIN
         entered := {_ENTERED_LIVE};
         IF entered IS NOT NULL THEN
           INSERT INTO stays (state, days, event_id, left_at, entered_at, pathway_id, enrollment_id)
           SELECT NEW.from_state, EXTRACT(EPOCH FROM (NEW.effective_at - entered)) / 86400.0,
                  NEW.id, NEW.effective_at, entered, n.pathway_id, NEW.enrollment_id
           FROM enrollments n WHERE n.id = NEW.enrollment_id;
         END IF;
         RETURN NULL;
       END $$""",
    "DROP TRIGGER events_close_stay ON events",
    """CREATE TRIGGER events_close_stay AFTER INSERT ON events
       FOR EACH ROW WHEN (NEW.from_state IS NOT NULL AND NEW.from_state <> NEW.to_state
                          AND NEW.voids IS NULL)
       EXECUTE FUNCTION pathway_close_stay()""",
    """CREATE FUNCTION pathway_stay_of_voided_event() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NOT EXISTS (SELECT 1 FROM events c JOIN events v
                          ON v.enrollment_id = c.enrollment_id AND v.voids = c.seq
                        WHERE c.id = OLD.event_id) THEN
           RAISE EXCEPTION 'stays are append-only: DELETE is not allowed';
         END IF;
         RETURN OLD;
       END $$""",
    "DROP TRIGGER stays_append_only ON stays",
    """CREATE TRIGGER stays_no_update BEFORE UPDATE ON stays
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER stays_no_delete BEFORE DELETE ON stays
       FOR EACH ROW EXECUTE FUNCTION pathway_stay_of_voided_event()""",
]

_POSTGRESQL_MARK_ERROR = """CREATE OR REPLACE FUNCTION pathway_observation_mark_error_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF OLD.entered_in_error OR NOT NEW.entered_in_error
            OR NEW.error_reason IS NULL OR NEW.error_actor IS NULL OR NEW.error_at IS NULL
            OR NEW.error_role IS NULL OR NEW.error_recorded_at IS NULL
            OR NEW.error_chain_seq IS NULL OR NEW.error_hash IS NULL
            OR (NEW.id, NEW.enrollment_id, NEW.kind, NEW.data, NEW.effective_at,
                NEW.recorded_at, NEW.actor, NEW.role, NEW.chain_seq, NEW.hash)
               IS DISTINCT FROM
               (OLD.id, OLD.enrollment_id, OLD.kind, OLD.data, OLD.effective_at,
                OLD.recorded_at, OLD.actor, OLD.role, OLD.chain_seq, OLD.hash)
         THEN
           RAISE EXCEPTION
             'observations are append-only: only marking entered-in-error is allowed';
         END IF;
         RETURN NEW;
       END $$"""

# --- the chain of the rows already stored --------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    found: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _chain_existing(bind: sa.engine.Connection) -> None:
    """Chain every enrollment's rows in the order they were written (recorded time; an
    enrollment's events before its observations at the same instant)."""
    rows = bind.exec_driver_sql(
        "SELECT n.id, p.identifier, n.pathway_id FROM enrollments n JOIN patients p ON p.id = n.patient_id"
    ).all()
    for enrollment_id, patient, pathway in rows:
        entries: list[tuple[Any, int, int, str, Any, dict[str, Any]]] = []
        for e in bind.exec_driver_sql(
            'SELECT id, seq, "trigger", from_state, to_state, actor, role, effective_at, recorded_at, '
            "reason, payload FROM events WHERE enrollment_id = %s ORDER BY seq"
            if bind.dialect.name == "postgresql"
            else 'SELECT id, seq, "trigger", from_state, to_state, actor, role, effective_at, recorded_at, '
            "reason, payload FROM events WHERE enrollment_id = ? ORDER BY seq",
            (enrollment_id,),
        ).all():
            fields = {
                "seq": e[1],
                "trigger": e[2],
                "from_state": e[3],
                "to_state": e[4],
                "actor": e[5],
                "role": e[6],
                "effective_at": _time(e[7]),
                "recorded_at": _time(e[8]),
                "reason": e[9],
                "payload": _json(e[10]),
                "voids": None,
            }
            entries.append((_time(e[8]), 0, e[1], "event", e[0], fields))
        mark = "%s" if bind.dialect.name == "postgresql" else "?"
        for o in bind.exec_driver_sql(
            "SELECT id, kind, data, effective_at, recorded_at, actor, role, entered_in_error, error_reason, "
            "error_actor, error_role, error_at, error_recorded_at FROM observations "
            f"WHERE enrollment_id = {mark} ORDER BY id",
            (enrollment_id,),
        ).all():
            fields = {
                "kind": o[1],
                "data": _json(o[2]),
                "effective_at": _time(o[3]),
                "recorded_at": _time(o[4]),
                "actor": o[5],
                "role": o[6],
            }
            entries.append((_time(o[4]), 1, o[0], "observation", o[0], fields))
            if o[7]:
                correction = {
                    "reason": o[8],
                    "actor": o[9],
                    "role": o[10],
                    "effective_at": _time(o[11]),
                    "recorded_at": _time(o[12] or o[11]),
                }
                entries.append((_time(o[12] or o[11]), 2, o[0], "correction", o[0], correction))
        entries.sort(key=lambda x: (x[0], x[1], x[2]))
        head = None
        placed: dict[int, int] = {}  # observation id -> its chain_seq
        for chain_seq, (_, _, _, what, row_id, fields) in enumerate(entries, start=1):
            where = {"patient": patient, "pathway": pathway, "chain_seq": chain_seq}
            if what == "event":
                head = chain.link(head, chain.event_entry(**where, **fields))
                bind.execute(
                    sa.text("UPDATE events SET chain_seq = :c, hash = :h WHERE id = :i"),
                    {"c": chain_seq, "h": head, "i": row_id},
                )
            elif what == "observation":
                head = chain.link(head, chain.observation_entry(**where, **fields))
                placed[row_id] = chain_seq
                bind.execute(
                    sa.text("UPDATE observations SET chain_seq = :c, hash = :h WHERE id = :i"),
                    {"c": chain_seq, "h": head, "i": row_id},
                )
            else:
                head = chain.link(
                    head, chain.correction_entry(**where, observation_chain_seq=placed.get(row_id), **fields)
                )
                bind.execute(
                    sa.text("UPDATE observations SET error_chain_seq = :c, error_hash = :h WHERE id = :i"),
                    {"c": chain_seq, "h": head, "i": row_id},
                )
        bind.execute(
            sa.text("UPDATE enrollments SET chain_head = :h, version = :v WHERE id = :i"),
            {"h": head, "v": max(len(entries), 1), "i": enrollment_id},
        )


def _sqlite_triggers(bind: sa.engine.Connection) -> set[str]:
    return {r[0] for r in bind.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        "settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # Plain ADD COLUMN on both engines (SQLite keeps its triggers: a batch rebuild would not).
    op.add_column("patients", sa.Column("identifier_system", sa.String(255)))
    columns: list[tuple[str, str, Any]] = [
        ("enrollments", "chain_head", sa.String(64)),
        ("enrollments", "referral_system", sa.String(255)),
        ("enrollments", "referral_value", sa.String(255)),
        ("events", "chain_seq", sa.Integer()),
        ("events", "hash", sa.String(64)),
        ("events", "voids", sa.Integer()),
        ("observations", "chain_seq", sa.Integer()),
        ("observations", "hash", sa.String(64)),
        ("observations", "error_chain_seq", sa.Integer()),
        ("observations", "error_hash", sa.String(64)),
    ]
    for table, name, kind in columns:
        op.add_column(table, sa.Column(name, kind))
    op.create_index(
        "ix_events_voids",
        "events",
        ["enrollment_id", "voids"],
        sqlite_where=sa.text("voids IS NOT NULL"),
        postgresql_where=sa.text("voids IS NOT NULL"),
    )
    # Chaining the stored rows updates them: the append-only rules step aside for it, in this
    # migration's transaction, and come back in their new form.
    if postgresql:
        op.execute("ALTER TABLE events DISABLE TRIGGER USER")
        op.execute("ALTER TABLE observations DISABLE TRIGGER USER")
        _chain_existing(bind)
        op.execute("ALTER TABLE events ENABLE TRIGGER USER")
        op.execute("ALTER TABLE observations ENABLE TRIGGER USER")
        op.execute(_POSTGRESQL_MARK_ERROR)
        for statement in [*POSTGRESQL_TRIGGERS, *POSTGRESQL_STAYS]:
            op.execute(statement)
        return
    present = _sqlite_triggers(bind)
    for name in ("events_no_update", "observations_only_mark_error"):
        if name in present:
            op.execute(f"DROP TRIGGER {name}")
    _chain_existing(bind)
    if "events_no_update" in present:
        op.execute(
            "CREATE TRIGGER events_no_update BEFORE UPDATE ON events\n"
            "       BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END"
        )
    if "observations_only_mark_error" in present:
        op.execute(_sqlite_mark_error())
    for name in ("events_close_stay", "stays_no_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in [*SQLITE_TRIGGERS, *SQLITE_STAYS]:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for trigger, table in (
            ("enrollments_follow_events", "enrollments"),
            ("enrollments_no_delete", "enrollments"),
            ("enrollments_no_truncate", "enrollments"),
            ("patients_no_delete", "patients"),
            ("patients_no_truncate", "patients"),
            ("patients_keep_identifier", "patients"),
            ("events_reopen_stay", "events"),
            ("stays_no_update", "stays"),
            ("stays_no_delete", "stays"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in (
            "pathway_enrollment_follows_events",
            "pathway_patient_keeps_identifier",
            "pathway_reopen_stay",
            "pathway_stay_of_voided_event",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        op.execute(
            """CREATE TRIGGER stays_append_only BEFORE UPDATE OR DELETE ON stays
               FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()"""
        )
        # pathway_close_stay as revision 0003 made it
        op.execute(_0003.POSTGRESQL[2].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
        op.execute("DROP TRIGGER events_close_stay ON events")
        op.execute(_0003.POSTGRESQL[3])
        op.execute(_0004._postgresql_function(audited=True))
    else:
        present = _sqlite_triggers(bind)
        for name in (
            "events_no_replace",
            "observations_no_replace",
            "enrollments_follow_events",
            "enrollments_no_delete",
            "patients_no_delete",
            "patients_keep_identifier",
            "events_reopen_stay",
            "events_close_stay",
            "stays_no_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(_0003.SQLITE[2])  # events_close_stay as revision 0003 made it
        op.execute(_0003.SQLITE[4])  # stays_no_delete
        if "observations_only_mark_error" in present:
            op.execute("DROP TRIGGER observations_only_mark_error")
            op.execute(_0004._sqlite_trigger(audited=True))
    op.drop_index("ix_events_voids", table_name="events")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop the tables' triggers.
    for table, column in (
        ("observations", "error_hash"),
        ("observations", "error_chain_seq"),
        ("observations", "hash"),
        ("observations", "chain_seq"),
        ("events", "voids"),
        ("events", "hash"),
        ("events", "chain_seq"),
        ("enrollments", "referral_value"),
        ("enrollments", "referral_system"),
        ("enrollments", "chain_head"),
        ("patients", "identifier_system"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("settings")
