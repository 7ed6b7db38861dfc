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


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (SQLite does not rebuild the table, so its
    # append-only triggers stay as they are; they do not name these columns).
    op.add_column("observations", sa.Column("error_role", sa.String(100)))
    op.add_column("observations", sa.Column("error_recorded_at", sa.DateTime(timezone=True)))
    # The one UPDATE the append-only triggers allow is marking a row in error, so the
    # backfill runs with them briefly off, in this migration's transaction.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        guarded = bind.exec_driver_sql(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'observations_only_mark_error' "
            "AND tgrelid = 'observations'::regclass"
        ).scalar_one()
        if guarded:
            op.execute("ALTER TABLE observations DISABLE TRIGGER observations_only_mark_error")
        op.execute("UPDATE observations SET error_recorded_at = error_at WHERE entered_in_error")
        if guarded:
            op.execute("ALTER TABLE observations ENABLE TRIGGER observations_only_mark_error")
    else:
        trigger = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'observations_only_mark_error'"
        ).scalar()
        if trigger is not None:
            op.execute("DROP TRIGGER observations_only_mark_error")
        op.execute("UPDATE observations SET error_recorded_at = error_at WHERE entered_in_error = 1")
        if trigger is not None:
            op.execute(trigger)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop the table's triggers.
    op.execute("ALTER TABLE observations DROP COLUMN error_recorded_at")
    op.execute("ALTER TABLE observations DROP COLUMN error_role")
