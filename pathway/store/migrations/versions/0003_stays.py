"""Stays: one row per completed stay in a state, kept by the database itself.

A stay starts with the event that entered a state and ends with the next event
that changed the state. Each time such an event is inserted, a trigger in the
same transaction adds the stay it closed, with its length in days. The
bottleneck report then reads completed stays in order of length from an index
(nearest-rank percentiles by walking it) instead of pairing every event with
the next one and sorting a million rows on each run. Stays are derived from the
append-only event log and are append-only themselves; the migration fills them
from the events already stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Where the stay being closed began: the latest earlier event that changed the state
# (a migration event, from == to, does not start a stay).
_ENTERED = """(SELECT p.effective_at FROM events p
                WHERE p.enrollment_id = NEW.enrollment_id AND p.seq < NEW.seq
                  AND (p.from_state IS NULL OR p.from_state <> p.to_state)
                ORDER BY p.seq DESC LIMIT 1)"""

SQLITE = [
    # WITHOUT ROWID: the table is its own index in (state, days) order.
    """CREATE TABLE stays (
         state VARCHAR(100) NOT NULL,
         days FLOAT NOT NULL,
         event_id INTEGER NOT NULL,
         left_at VARCHAR(32) NOT NULL,
         entered_at VARCHAR(32) NOT NULL,
         pathway_id VARCHAR(100) NOT NULL,
         enrollment_id INTEGER NOT NULL,
         PRIMARY KEY (state, days, event_id)
       ) WITHOUT ROWID""",
    "CREATE INDEX ix_stays_left_at ON stays (left_at)",
    f"""CREATE TRIGGER events_close_stay AFTER INSERT ON events
        WHEN NEW.from_state IS NOT NULL AND NEW.from_state <> NEW.to_state
        BEGIN
          INSERT INTO stays (state, days, event_id, left_at, entered_at, pathway_id, enrollment_id)
          SELECT NEW.from_state, julianday(NEW.effective_at) - julianday(s.entered), NEW.id,
                 NEW.effective_at, s.entered, n.pathway_id, NEW.enrollment_id
          FROM (SELECT {_ENTERED} AS entered) s, enrollments n
          WHERE n.id = NEW.enrollment_id AND s.entered IS NOT NULL;
        END""",
    """CREATE TRIGGER stays_no_update BEFORE UPDATE ON stays
       BEGIN SELECT RAISE(ABORT, 'stays are append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER stays_no_delete BEFORE DELETE ON stays
       BEGIN SELECT RAISE(ABORT, 'stays are append-only: DELETE is not allowed'); END""",
]

POSTGRESQL = [
    """CREATE TABLE stays (
         state VARCHAR(100) NOT NULL,
         days DOUBLE PRECISION NOT NULL,
         event_id BIGINT NOT NULL,
         left_at TIMESTAMP WITH TIME ZONE NOT NULL,
         entered_at TIMESTAMP WITH TIME ZONE NOT NULL,
         pathway_id VARCHAR(100) NOT NULL,
         enrollment_id BIGINT NOT NULL,
         PRIMARY KEY (state, days, event_id)
       )""",
    "CREATE INDEX ix_stays_left_at ON stays (left_at)",
    f"""CREATE FUNCTION pathway_close_stay() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE entered TIMESTAMP WITH TIME ZONE;
       BEGIN
         entered := {_ENTERED};
         IF entered IS NOT NULL THEN
           INSERT INTO stays (state, days, event_id, left_at, entered_at, pathway_id, enrollment_id)
           SELECT NEW.from_state, EXTRACT(EPOCH FROM (NEW.effective_at - entered)) / 86400.0,
                  NEW.id, NEW.effective_at, entered, n.pathway_id, NEW.enrollment_id
           FROM enrollments n WHERE n.id = NEW.enrollment_id;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER events_close_stay AFTER INSERT ON events
       FOR EACH ROW WHEN (NEW.from_state IS NOT NULL AND NEW.from_state <> NEW.to_state)
       EXECUTE FUNCTION pathway_close_stay()""",
    """CREATE TRIGGER stays_append_only BEFORE UPDATE OR DELETE ON stays
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER stays_no_truncate BEFORE TRUNCATE ON stays
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
]


def _backfill(days: str) -> str:
    return f"""
INSERT INTO stays (state, days, event_id, left_at, entered_at, pathway_id, enrollment_id)
WITH changes AS (
    SELECT e.id, e.enrollment_id, e.seq, e.from_state, e.to_state, e.effective_at
    FROM events e WHERE e.from_state IS NULL OR e.from_state <> e.to_state
),
paired AS (
    SELECT c.*, LAG(c.effective_at) OVER (PARTITION BY c.enrollment_id ORDER BY c.seq) AS entered
    FROM changes c
)
SELECT p.from_state, {days}, p.id, p.effective_at, p.entered, n.pathway_id, p.enrollment_id
FROM paired p JOIN enrollments n ON n.id = p.enrollment_id
WHERE p.from_state IS NOT NULL AND p.entered IS NOT NULL
"""


# Each open enrollment's current stay in (state, entered) order: the report's open stays.
OPEN_STAYS_INDEX = (
    "CREATE INDEX ix_enrollments_open_stay ON enrollments (state, entered_state_at, pathway_id) "
    "WHERE closed_at IS NULL"
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)
    op.execute(OPEN_STAYS_INDEX)
    if postgresql:
        op.execute(_backfill("EXTRACT(EPOCH FROM (p.effective_at - p.entered)) / 86400.0"))
    else:
        op.execute(_backfill("julianday(p.effective_at) - julianday(p.entered)"))


def downgrade() -> None:
    op.execute("DROP INDEX ix_enrollments_open_stay")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pathway_close_stay() CASCADE")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_close_stay")
    op.execute("DROP TABLE stays")
