"""The tables, as SQLAlchemy Core `Table` objects (the domain stays free of SQLAlchemy).

Times are stored in UTC. `events` and `observations` are append-only; database
triggers (see the migrations) refuse UPDATE and DELETE on them, save the one
allowed change of marking an observation entered-in-error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: TIMESTAMPTZ on PostgreSQL; on SQLite the text SQLAlchemy's own
    DateTime writes ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), parsed with the fast
    `datetime.fromisoformat` instead of a regular expression."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = UtcDateTime()

patients = Table(
    "patients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("identifier", String(64), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("created_at", UtcTime, nullable=False),
    Column("identifier_system", String(255)),  # migration 0005: the system a FHIR referral named
)

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False),
    Column("pathway_id", String(100), nullable=False),
    Column("pathway_version", Integer, nullable=False),
    Column("profile", String(100), nullable=False),
    Column("state", String(100), nullable=False),
    Column("held_from", String(100)),
    Column("entered_state_at", UtcTime, nullable=False),
    Column("opened_at", UtcTime, nullable=False),
    Column("closed_at", UtcTime),
    Column("last_event_at", UtcTime, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    # Migration 0005: the hash of the enrollment's latest audit entry (its chain's head), and
    # the referral it came from (a FHIR ServiceRequest's identifier, or a hash of one).
    Column("chain_head", String(64)),
    Column("referral_system", String(255)),
    Column("referral_value", String(255)),
    Index("ix_enrollments_patient", "patient_id"),
    Index("ix_enrollments_pathway_state", "pathway_id", "state"),
    # At most one open enrollment per patient and pathway.
    Index(
        "ux_enrollments_open",
        "patient_id",
        "pathway_id",
        unique=True,
        sqlite_where=text("closed_at IS NULL"),
        postgresql_where=text("closed_at IS NULL"),
    ),
    # Each open enrollment's current stay in (state, entered) order (migration 0003).
    Index(
        "ix_enrollments_open_stay",
        "state",
        "entered_state_at",
        "pathway_id",
        sqlite_where=text("closed_at IS NULL"),
        postgresql_where=text("closed_at IS NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enrollment_id", Id, ForeignKey("enrollments.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("trigger", String(100), nullable=False),
    Column("from_state", String(100)),
    Column("to_state", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(100), nullable=False),
    Column("effective_at", UtcTime, nullable=False),
    Column("recorded_at", UtcTime, nullable=False),
    Column("reason", Text),
    Column("payload", Json),
    # Migration 0005: the entry's place in its enrollment's hash chain and its hash; a reopen
    # names the seq of the closing event it voids.
    Column("chain_seq", Integer),
    Column("hash", String(64)),
    Column("voids", Integer),
    UniqueConstraint("enrollment_id", "seq", name="ux_events_enrollment_seq"),
    Index(
        "ix_events_voids",
        "enrollment_id",
        "voids",
        sqlite_where=text("voids IS NOT NULL"),
        postgresql_where=text("voids IS NOT NULL"),
    ),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enrollment_id", Id, ForeignKey("enrollments.id"), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("data", Json, nullable=False),
    Column("effective_at", UtcTime, nullable=False),
    Column("recorded_at", UtcTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(100), nullable=False),
    Column("entered_in_error", Boolean, nullable=False, server_default=text("false")),
    Column("error_reason", Text),
    Column("error_actor", String(200)),
    Column("error_at", UtcTime),
    Column("error_role", String(100)),  # migration 0004
    Column("error_recorded_at", UtcTime),  # migration 0004
    Column("chain_seq", Integer),  # migration 0005: the observation's place in the chain
    Column("hash", String(64)),
    Column("error_chain_seq", Integer),  # the correction's place in the chain
    Column("error_hash", String(64)),
    Index("ix_observations_enrollment", "enrollment_id", "kind"),
)

# Completed stays, one per state-changing event, written by a database trigger on
# `events` (migration 0003; WITHOUT ROWID on SQLite, so the key is the storage order).
stays = Table(
    "stays",
    metadata,
    Column("state", String(100), primary_key=True),
    Column("days", Float, primary_key=True),
    Column("event_id", Id, primary_key=True),
    Column("left_at", UtcTime, nullable=False),
    Column("entered_at", UtcTime, nullable=False),
    Column("pathway_id", String(100), nullable=False),
    Column("enrollment_id", Id, nullable=False),
    Index("ix_stays_left_at", "left_at"),
    sqlite_with_rowid=False,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("enrollment_id", Id, ForeignKey("enrollments.id")),
    Column("payload", Json, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("delivered_at", UtcTime),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("next_attempt_at", UtcTime),
    Index("ix_outbox_pending", "delivered_at", "id"),
)

# Clinic-wide settings (migration 0005): the clinic's time zone, FHIR identifier systems.
settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# The clinic service (migration 0006): who may call it, what they asked twice, who looked.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("roles", Json, nullable=False),
    Column("password_hash", Text),
    Column("created_at", UtcTime, nullable=False),
    Column("disabled_at", UtcTime),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", UtcTime),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("expires_at", UtcTime),
    Column("revoked_at", UtcTime),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("status", Integer),
    Column("headers", Json),
    Column("body", Text),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(100), nullable=False),
    Column("patient", String(255), nullable=False),
    Column("what", String(200), nullable=False),
    Index("ix_access_log_patient", "patient", "at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("role", String(100), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("expires_at", UtcTime, nullable=False),
    Column("ended_at", UtcTime),
)

# Subscribers (migration 0007): each its own cursor over the outbox, its own retries and
# dead letters, and a lease so that one delivery process at a time serves it.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # webhook | amqp
    Column("url", Text, nullable=False),
    Column("exchange", String(255)),
    Column("secret", String(200)),
    Column("types", Json),
    Column("pathway", String(100)),
    Column("skip_dead", Boolean, nullable=False, server_default=text("false")),
    Column("max_attempts", Integer, nullable=False, server_default=text("8")),
    Column("cursor", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", UtcTime, nullable=False),
    Column("disabled_at", UtcTime),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcTime),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id"), primary_key=True),
    Column("outbox_id", Id, ForeignKey("outbox.id"), primary_key=True),
    Column("enrollment_id", Id),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("next_attempt_at", UtcTime),
    Column("delivered_at", UtcTime),
    Column("dead_at", UtcTime),
    Index("ix_deliveries_open", "subscriber_id", "delivered_at", "outbox_id"),
)
