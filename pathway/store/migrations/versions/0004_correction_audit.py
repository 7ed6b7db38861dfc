"""Corrections keep their full audit: the role, and when the correction was entered.

A correction (an observation marked entered-in-error) kept who, why and one time,
which was its effective time (`--at`), so the time it was entered and the role
it was made in were lost. Corrections made before this revision get their
effective time as their entered time and no role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# The append-only rule on observations (migration 0001), before and after this revision:
# marking a row entered-in-error must now also say in which role and when it was entered.
_CONDITION = {
    False: "",
    True: " AND NEW.error_role IS NOT NULL AND NEW.error_recorded_at IS NOT NULL",
}


def _sqlite_trigger(audited: bool) -> str:
    return f"""CREATE TRIGGER observations_only_mark_error BEFORE UPDATE ON observations
       WHEN NOT (
            OLD.entered_in_error = 0 AND NEW.entered_in_error = 1
            AND NEW.error_reason IS NOT NULL AND NEW.error_actor IS NOT NULL
            AND NEW.error_at IS NOT NULL{_CONDITION[audited]}
            AND NEW.id IS OLD.id AND NEW.enrollment_id IS OLD.enrollment_id
            AND NEW.kind IS OLD.kind AND NEW.data IS OLD.data
            AND NEW.effective_at IS OLD.effective_at AND NEW.recorded_at IS OLD.recorded_at
            AND NEW.actor IS OLD.actor AND NEW.role IS OLD.role)
       BEGIN SELECT RAISE(ABORT,
            'observations are append-only: only marking entered-in-error is allowed'); END"""


def _postgresql_function(audited: bool) -> str:
    missing = " OR NEW.error_role IS NULL OR NEW.error_recorded_at IS NULL" if audited else ""
    return f"""CREATE OR REPLACE FUNCTION pathway_observation_mark_error_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF OLD.entered_in_error OR NOT NEW.entered_in_error
            OR NEW.error_reason IS NULL OR NEW.error_actor IS NULL OR NEW.error_at IS NULL{missing}
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
       END $$"""


def _guarded(bind: sa.engine.Connection) -> bool:
    """Whether the append-only rule on observations is in place (it is, unless removed)."""
    if bind.dialect.name == "postgresql":
        return bool(
            bind.exec_driver_sql(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'observations_only_mark_error' "
                "AND tgrelid = 'observations'::regclass"
            ).scalar_one()
        )
    return bool(
        bind.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
            "AND name = 'observations_only_mark_error'"
        ).scalar_one()
    )


def _set_rule(bind: sa.engine.Connection, audited: bool) -> None:
    if bind.dialect.name == "postgresql":
        op.execute(_postgresql_function(audited))
    else:
        op.execute("DROP TRIGGER observations_only_mark_error")
        op.execute(_sqlite_trigger(audited))


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (SQLite does not rebuild the table, so its
    # append-only triggers stay as they are; they do not name these columns).
    op.add_column("observations", sa.Column("error_role", sa.String(100)))
    op.add_column("observations", sa.Column("error_recorded_at", sa.DateTime(timezone=True)))
    # The one UPDATE the append-only triggers allow is marking a row in error, so the
    # backfill runs with them briefly off, in this migration's transaction; then the rule
    # also asks a marking for its role and entered time.
    bind = op.get_bind()
    guarded = _guarded(bind)
    if bind.dialect.name == "postgresql":
        if guarded:
            op.execute("ALTER TABLE observations DISABLE TRIGGER observations_only_mark_error")
        op.execute("UPDATE observations SET error_recorded_at = error_at WHERE entered_in_error")
        if guarded:
            op.execute("ALTER TABLE observations ENABLE TRIGGER observations_only_mark_error")
    else:
        if guarded:
            op.execute("DROP TRIGGER observations_only_mark_error")
        op.execute("UPDATE observations SET error_recorded_at = error_at WHERE entered_in_error = 1")
        if guarded:
            op.execute(_sqlite_trigger(audited=True))
    if guarded and bind.dialect.name == "postgresql":
        op.execute(_postgresql_function(audited=True))


def downgrade() -> None:
    bind = op.get_bind()
    if _guarded(bind):  # first: SQLite cannot drop a column a trigger names
        _set_rule(bind, audited=False)
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE observations DROP COLUMN error_recorded_at")
    op.execute("ALTER TABLE observations DROP COLUMN error_role")
