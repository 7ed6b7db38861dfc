"""The clinic service: users and their tokens, idempotency keys, the access log, sessions.

- `users` (roles, an argon2 password hash for the workspace, disabled, lock-out) and
  `tokens` (only a SHA-256 of each bearer token is kept; expiry, revocation).
- `idempotency_keys`: the first response to a POST with an `Idempotency-Key`, by caller
  and key, so a retry within 24 hours returns it across workers and restarts.
- `access_log`: who read which patient's data through the service, append-only (triggers
  refuse UPDATE and DELETE, and TRUNCATE on PostgreSQL).
- `sessions`: the workspace's signed-in browsers (a SHA-256 of the cookie).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

SQLITE = [
    """CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
       BEGIN SELECT RAISE(ABORT, 'access_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
       BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE is not allowed'); END""",
]
POSTGRESQL = [
    # pathway_refuse_change() is revision 0001's.
    """CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
       FOR EACH ROW EXECUTE FUNCTION pathway_refuse_change()""",
    """CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()""",
]


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "users",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("roles", _JSON, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("disabled_at", _TIME),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("locked_until", _TIME),
    )
    op.create_table(
        "tokens",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("user_id", _id(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME),
        sa.Column("revoked_at", _TIME),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("headers", _JSON),
        sa.Column("body", sa.Text),
    )
    op.create_table(
        "access_log",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("patient", sa.String(255), nullable=False),
        sa.Column("what", sa.String(200), nullable=False),
    )
    op.create_index("ix_access_log_patient", "access_log", ["patient", "at"])
    op.create_table(
        "sessions",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("user_id", _id(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME),
    )
    for statement in POSTGRESQL if bind.dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    for table in ("sessions", "access_log", "idempotency_keys", "tokens", "users"):
        op.drop_table(table)
