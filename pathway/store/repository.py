"""The unit of work: one command is one transaction over SQLAlchemy Core.

`Store.write()` opens a write transaction (IMMEDIATE on SQLite) that commits on
success and rolls back on any exception; `Store.read()` a read-only one. The
`Tx` methods are the only SQL in the project outside reports and migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from pathway.errors import AlreadyEnrolled, ConcurrencyError, StoreError
from pathway.record import Enrollment, Event, Observation
from pathway.store import database
from pathway.store.tables import enrollments, events, observations, outbox, patients
from pathway.timeutil import from_storage


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else from_storage(value)


def _utc(value: datetime) -> datetime:
    return from_storage(value)


_ENROLLMENT_COLUMNS = (
    enrollments,
    patients.c.identifier,
    patients.c.display_name,
)


def _enrollment(row: Row[Any]) -> Enrollment:
    m = row._mapping
    return Enrollment(
        id=m["id"],
        patient=m["identifier"],
        display_name=m["display_name"],
        pathway=m["pathway_id"],
        pathway_version=m["pathway_version"],
        profile=m["profile"],
        state=m["state"],
        held_from=m["held_from"],
        entered_state_at=_utc(m["entered_state_at"]),
        opened_at=_utc(m["opened_at"]),
        closed_at=_aware(m["closed_at"]),
        version=m["version"],
        last_event_at=_utc(m["last_event_at"]),
        last_seq=m["last_seq"],
    )


def _observation(row: Row[Any]) -> Observation:
    m = row._mapping
    return Observation(
        id=m["id"],
        enrollment_id=m["enrollment_id"],
        kind=m["kind"],
        data=m["data"],
        effective_at=_utc(m["effective_at"]),
        recorded_at=_utc(m["recorded_at"]),
        actor=m["actor"],
        role=m["role"],
        entered_in_error=bool(m["entered_in_error"]),
        error_reason=m["error_reason"],
        error_actor=m["error_actor"],
        error_at=_aware(m["error_at"]),
    )


def _event(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        enrollment_id=m["enrollment_id"],
        seq=m["seq"],
        trigger=m["trigger"],
        from_state=m["from_state"],
        to_state=m["to_state"],
        actor=m["actor"],
        role=m["role"],
        effective_at=_utc(m["effective_at"]),
        recorded_at=_utc(m["recorded_at"]),
        reason=m["reason"],
        payload=m["payload"] or {},
    )


class Tx:
    """The reads and writes of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # patients -----------------------------------------------------------------
    def find_patient(self, identifier: str) -> Any:
        return self.conn.execute(
            select(patients.c.id, patients.c.identifier, patients.c.display_name).where(
                patients.c.identifier == identifier
            )
        ).first()

    def add_patient(self, identifier: str, display_name: str | None, at: datetime) -> int:
        result = self.conn.execute(
            insert(patients).values(identifier=identifier, display_name=display_name, created_at=at)
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def set_display_name(self, patient_id: int, display_name: str) -> None:
        self.conn.execute(
            update(patients).where(patients.c.id == patient_id).values(display_name=display_name)
        )

    # enrollments --------------------------------------------------------------
    def _enrollment_query(self) -> Any:
        return select(*_ENROLLMENT_COLUMNS).join(patients, patients.c.id == enrollments.c.patient_id)

    def enrollments_of(self, patient_id: int) -> list[Enrollment]:
        rows = self.conn.execute(
            self._enrollment_query()
            .where(enrollments.c.patient_id == patient_id)
            .order_by(enrollments.c.opened_at, enrollments.c.id)
        )
        return [_enrollment(r) for r in rows]

    def enrollment(self, enrollment_id: int) -> Enrollment:
        row = self.conn.execute(self._enrollment_query().where(enrollments.c.id == enrollment_id)).one()
        return _enrollment(row)

    def list_enrollments(
        self, *, pathway: str | None = None, state: str | None = None, open_only: bool = False
    ) -> list[Enrollment]:
        query = self._enrollment_query()
        if pathway:
            query = query.where(enrollments.c.pathway_id == pathway)
        if state:
            query = query.where(enrollments.c.state == state)
        if open_only:
            query = query.where(enrollments.c.closed_at.is_(None))
        query = query.order_by(enrollments.c.entered_state_at, enrollments.c.id)
        return [_enrollment(r) for r in self.conn.execute(query)]

    def add_enrollment(
        self,
        *,
        patient_id: int,
        pathway: str,
        version: int,
        profile: str,
        state: str,
        at: datetime,
    ) -> int:
        # An error aborts the whole transaction, so no savepoint is needed: the
        # unit of work rolls back as the exception leaves it.
        try:
            result = self.conn.execute(
                insert(enrollments).values(
                    patient_id=patient_id,
                    pathway_id=pathway,
                    pathway_version=version,
                    profile=profile,
                    state=state,
                    entered_state_at=at,
                    opened_at=at,
                    last_event_at=at,
                    last_seq=1,  # the enroll event
                    version=1,
                )
            )
        except IntegrityError:
            raise AlreadyEnrolled(f"the patient already has an open enrollment in {pathway}") from None
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def save_state(
        self,
        enrollment: Enrollment,
        *,
        state: str,
        held_from: str | None,
        entered_state_at: datetime,
        closed_at: datetime | None,
        last_event_at: datetime,
        last_seq: int,
    ) -> None:
        """Write a state change if nobody else changed the enrollment since it was read."""
        result = self.conn.execute(
            update(enrollments)
            .where(
                and_(
                    enrollments.c.id == enrollment.id,
                    enrollments.c.version == enrollment.version,
                )
            )
            .values(
                state=state,
                held_from=held_from,
                entered_state_at=entered_state_at,
                closed_at=closed_at,
                last_event_at=last_event_at,
                last_seq=last_seq,
                version=enrollment.version + 1,
            )
        )
        if result.rowcount != 1:
            raise ConcurrencyError(
                f"{enrollment.patient} ({enrollment.pathway}) was changed by someone else "
                "while this change was being made; nothing was written: check its status and retry"
            )

    def touch(self, enrollment: Enrollment) -> None:
        """Bump the enrollment's version (a record or correction), refusing a concurrent change."""
        result = self.conn.execute(
            update(enrollments)
            .where(
                and_(
                    enrollments.c.id == enrollment.id,
                    enrollments.c.version == enrollment.version,
                )
            )
            .values(version=enrollment.version + 1)
        )
        if result.rowcount != 1:
            raise ConcurrencyError(
                f"{enrollment.patient} ({enrollment.pathway}) was changed by someone else "
                "while this change was being made; nothing was written: check its status and retry"
            )

    # events -------------------------------------------------------------------
    def add_event(self, event: Event) -> None:
        try:
            self.conn.execute(
                insert(events).values(
                    enrollment_id=event.enrollment_id,
                    seq=event.seq,
                    trigger=event.trigger,
                    from_state=event.from_state,
                    to_state=event.to_state,
                    actor=event.actor,
                    role=event.role,
                    effective_at=event.effective_at,
                    recorded_at=event.recorded_at,
                    reason=event.reason,
                    payload=dict(event.payload) or None,
                )
            )
        except IntegrityError:
            raise ConcurrencyError(
                "another change to this enrollment was recorded at the same moment; retry"
            ) from None

    def events_of(self, enrollment_ids: Sequence[int]) -> list[Event]:
        if not enrollment_ids:
            return []
        rows = self.conn.execute(
            select(events)
            .where(events.c.enrollment_id.in_(list(enrollment_ids)))
            .order_by(events.c.effective_at, events.c.enrollment_id, events.c.seq)
        )
        return [_event(r) for r in rows]

    # observations -------------------------------------------------------------
    def add_observation(
        self,
        *,
        enrollment_id: int,
        kind: str,
        data: Mapping[str, Any],
        effective_at: datetime,
        recorded_at: datetime,
        actor: str,
        role: str,
    ) -> int:
        result = self.conn.execute(
            insert(observations).values(
                enrollment_id=enrollment_id,
                kind=kind,
                data=dict(data),
                effective_at=effective_at,
                recorded_at=recorded_at,
                actor=actor,
                role=role,
                entered_in_error=False,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def observations_of(
        self, enrollment_ids: Sequence[int], *, include_errors: bool = True
    ) -> list[Observation]:
        if not enrollment_ids:
            return []
        query = select(observations).where(observations.c.enrollment_id.in_(list(enrollment_ids)))
        if not include_errors:
            query = query.where(observations.c.entered_in_error.is_(False))
        query = query.order_by(observations.c.effective_at, observations.c.id)
        return [_observation(r) for r in self.conn.execute(query)]

    def observation(self, observation_id: int) -> Observation | None:
        row = self.conn.execute(select(observations).where(observations.c.id == observation_id)).first()
        return _observation(row) if row else None

    def mark_entered_in_error(self, observation_id: int, *, reason: str, actor: str, at: datetime) -> None:
        self.conn.execute(
            update(observations)
            .where(and_(observations.c.id == observation_id, observations.c.entered_in_error.is_(False)))
            .values(entered_in_error=True, error_reason=reason, error_actor=actor, error_at=at)
        )

    # outbox -------------------------------------------------------------------
    def add_outbox(
        self, *, type: str, enrollment_id: int | None, payload: Mapping[str, Any], at: datetime
    ) -> str:
        message_id = str(payload.get("id") or uuid.uuid4())
        self.conn.execute(
            insert(outbox).values(
                message_id=message_id,
                type=type,
                enrollment_id=enrollment_id,
                payload=dict(payload),
                created_at=at,
                attempts=0,
            )
        )
        return message_id

    def outbox_count(self, *, pending_only: bool = False) -> int:
        query = select(func.count()).select_from(outbox)
        if pending_only:
            query = query.where(outbox.c.delivered_at.is_(None))
        return int(self.conn.execute(query).scalar_one())


class Store:
    """A database holding pathway enrollments."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        """Open `url`; create the schema in an empty database when `create`."""
        engine = database.create(url)
        if create:
            database.ensure_schema(engine)
        return cls(engine)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        conn = self.engine.connect()
        try:
            if self.backend == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield Tx(conn)
        except OperationalError as exc:
            raise _store_error(exc) from None
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction (rolled back at the end)."""
        with self.engine.connect() as conn:
            try:
                yield Tx(conn)
            except OperationalError as exc:
                raise _store_error(exc) from None

    def close(self) -> None:
        self.engine.dispose()


def _store_error(exc: OperationalError) -> StoreError | ConcurrencyError:
    text = str(exc.orig)
    if "locked" in text or "could not serialize" in text or "deadlock" in text:
        return ConcurrencyError(f"the database is busy with another change ({text}); retry")
    return StoreError(f"database error: {text}")


def ids(rows: Iterable[Enrollment]) -> list[int]:
    return [e.id for e in rows]
