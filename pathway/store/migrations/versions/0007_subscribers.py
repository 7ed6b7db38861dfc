"""Subscribers: many receivers of the outbox, each with its own cursor, retries, dead
letters and delivery lease (webhooks signed per Standard Webhooks, or AMQP).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("exchange", sa.String(255)),
        sa.Column("secret", sa.String(200)),
        sa.Column("types", _JSON),
        sa.Column("pathway", sa.String(100)),
        sa.Column("skip_dead", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default=sa.text("8")),
        sa.Column("cursor", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("disabled_at", _TIME),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", _TIME),
    )
    op.create_table(
        "deliveries",
        sa.Column("subscriber_id", _id(), sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("outbox_id", _id(), sa.ForeignKey("outbox.id"), primary_key=True),
        sa.Column("enrollment_id", _id()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", _TIME),
        sa.Column("delivered_at", _TIME),
        sa.Column("dead_at", _TIME),
    )
    op.create_index("ix_deliveries_open", "deliveries", ["subscriber_id", "delivered_at", "outbox_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("subscribers")
