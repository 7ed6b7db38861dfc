"""The initial schema: patients, enrollments, events, observations, outbox; append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
UtcTime = sa.DateTime(timezone=True)

APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END""",
    """CREATE TRIGGER observations_no_delete BEFORE DELETE ON observations
       BEGIN SELECT RAISE(ABORT, 'observations are append-only: DELETE is not allowed'); END""",
    # The one allowed change: marking a row entered-in-error, once, with who, when and why.
    """CREATE TRIGGER observations_only_mark_error BEFORE UPDATE ON observations
       WHEN NOT (
            OLD.entered_in_error = 0 AND NEW.entered_in_error = 1
            AND NEW.error_reason IS NOT NULL AND NEW.error_actor IS NOT NULL
            AND NEW.error_at IS NOT NULL
            AND NEW.id IS OLD.id AND NEW.enrollment_id IS OLD.enrollment_id
            AND NEW.kind IS OLD.kind AND NEW.data IS OLD.data
            AND NEW.effective_at IS OLD.effective_at AND NEW.recorded_at IS OLD.recorded_at
            AND NEW.actor IS OLD.actor AND NEW.role IS OLD.role)
       BEGIN SELECT RAISE(ABORT,
            'observations are append-only: only marking entered-in-error is allowed'); END""",
]

APPEND_ONLY_POSTGRESQL = [
    """CREATE FUNCTION pathway_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME;
       END $$""",
    """CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER observations_no_delete BEFORE DELETE ON observations
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER observations_no_truncate BEFORE TRUNCATE ON observations
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE FUNCTION pathway_observation_mark_error_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF OLD.entered_in_error OR NOT NEW.entered_in_error
            OR NEW.error_reason IS NULL OR NEW.error_actor IS NULL OR NEW.error_at IS NULL
            OR (NEW.id, NEW.enrollment_id, NEW.kind, NEW.data, NEW.effective_at,
                NEW.recorded_at, NEW.actor, NEW.role)
               IS DISTINCT FROM
               (OLD.id, OLD.enrollment_id, OLD.kind, OLD.data, OLD.effective_at,
                OLD.recorded_at, OLD.actor, OLD.role)
         THEN
           RAISE EXCEPTION
             'observations are append-only: only marking entered-in-error is allowed';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER observations_only_mark_error BEFORE UPDATE ON observations
       FOR EACH ROW EXECUTE FUNCTION pathway_observation_mark_error_only()""",
]


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("identifier", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200)),
        sa.Column("created_at", UtcTime, nullable=False),
    )
    op.create_table(
        "enrollments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("patient_id", Id, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("pathway_id", sa.String(100), nullable=False),
        sa.Column("pathway_version", sa.Integer, nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("state", sa.String(100), nullable=False),
        sa.Column("held_from", sa.String(100)),
        sa.Column("entered_state_at", UtcTime, nullable=False),
        sa.Column("opened_at", UtcTime, nullable=False),
        sa.Column("closed_at", UtcTime),
        sa.Column("last_event_at", UtcTime, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_enrollments_patient", "enrollments", ["patient_id"])
    op.create_index("ix_enrollments_pathway_state", "enrollments", ["pathway_id", "state"])
    op.create_index(
        "ux_enrollments_open",
        "enrollments",
        ["patient_id", "pathway_id"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", Id, sa.ForeignKey("enrollments.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(100), nullable=False),
        sa.Column("from_state", sa.String(100)),
        sa.Column("to_state", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("effective_at", UtcTime, nullable=False),
        sa.Column("recorded_at", UtcTime, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("payload", Json),
        sa.UniqueConstraint("enrollment_id", "seq", name="ux_events_enrollment_seq"),
    )
    op.create_table(
        "observations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", Id, sa.ForeignKey("enrollments.id"), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("effective_at", UtcTime, nullable=False),
        sa.Column("recorded_at", UtcTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("entered_in_error", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("error_reason", sa.Text),
        sa.Column("error_actor", sa.String(200)),
        sa.Column("error_at", UtcTime),
    )
    op.create_index("ix_observations_enrollment", "observations", ["enrollment_id", "kind"])
    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("enrollment_id", Id, sa.ForeignKey("enrollments.id")),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", UtcTime, nullable=False),
        sa.Column("delivered_at", UtcTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_pending", "outbox", ["delivered_at", "id"])
    statements = APPEND_ONLY_POSTGRESQL if op.get_bind().dialect.name == "postgresql" else APPEND_ONLY_SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pathway_refuse_change() CASCADE")
        op.execute("DROP FUNCTION IF EXISTS pathway_observation_mark_error_only() CASCADE")
    for table in ("outbox", "observations", "events", "enrollments", "patients"):
        op.drop_table(table)
