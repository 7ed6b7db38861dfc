"""`Tx`: the reads and writes of one transaction over SQLAlchemy Core (the unit of work
of `unit_of_work.UnitOfWork`, against the database).

`Store` (repository.py) opens them. The `Tx` methods are the only SQL in the
project outside reports, migrations and the bulk writers (rows.py, bulk.py,
staged.py, which work inside a `Tx`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pathway.domain.effects import Position
from pathway.domain.record import Enrollment, Event, Observation
from pathway.domain.timeutil import from_storage
from pathway.errors import AlreadyEnrolled, ConcurrencyError
from pathway.store import converters
from pathway.store import statements as q
from pathway.store.outbox_queries import OutboxQueries
from pathway.store.rows import EventRow, NewMessageRow, NewObservationRow
from pathway.store.tables import enrollments, observations, patients, settings

_CONFLICT = (
    "the enrollment ({pathway}) was changed by someone else while this change was being made; "
    "nothing was written: check its status and retry"
)


class Tx(OutboxQueries):
    """The reads and writes of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.messages: list[dict[str, Any]] = []  # outbox messages written in this transaction
        # SQLite: hot statements go straight to the DBAPI connection, inside this transaction.
        self.dbapi: Any = None
        self.fast: q.Fast | None = None
        if conn.dialect.name == "sqlite":
            self.dbapi = conn.connection.driver_connection
            self.fast = q.fast_statements()

    def _execute_write(self, prepared: str, statement: Any, params: Mapping[str, Any]) -> Any:
        """Run a write on the fast path when there is one; return (rowcount, lastrowid)."""
        if self.fast is not None:
            cursor = getattr(self.fast, prepared).run(self.dbapi, params)
            return cursor.rowcount, cursor.lastrowid
        result = self.conn.execute(statement, params)
        key = result.inserted_primary_key if result.is_insert else None
        return result.rowcount, (key[0] if key else None)

    def _select(self, prepared: str, statement: Any, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        if self.fast is not None:
            rows: list[Mapping[str, Any]] = getattr(self.fast, prepared).rows(self.dbapi, params)
            return rows
        return [dict(r._mapping) for r in self.conn.execute(statement, params)]

    # settings -----------------------------------------------------------------
    def put_setting(self, key: str, value: str) -> None:
        """Store a clinic-wide setting (see `pathway.store.settings`)."""
        found = self.conn.execute(select(settings.c.key).where(settings.c.key == key)).first()
        if found is None:
            self.conn.execute(insert(settings).values(key=key, value=value))
        else:
            self.conn.execute(update(settings).where(settings.c.key == key).values(value=value))

    # patients -----------------------------------------------------------------
    def find_patient(self, identifier: str) -> Any:
        """The patient row, locked until the transaction ends on PostgreSQL (a writer's read:
        two enrollments of one patient at once run one after the other, so the second sees
        the first's episode; SQLite's write transactions already run one at a time)."""
        statement = q.FIND_PATIENT if self.fast is not None else q.FIND_PATIENT_LOCKED
        return self.conn.execute(statement, {"identifier": identifier}).first()

    def add_patient(
        self, identifier: str, display_name: str | None, at: datetime, system: str | None = None
    ) -> int:
        try:
            result = self.conn.execute(
                insert(patients).values(
                    identifier=identifier, display_name=display_name, created_at=at, identifier_system=system
                )
            )
        except IntegrityError:  # PostgreSQL: another transaction added them meanwhile
            raise ConcurrencyError(
                "another change added this patient at the same moment; nothing was written: retry"
            ) from None
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def set_identifier_system(self, patient_id: int, system: str) -> None:
        self.conn.execute(
            update(patients).where(patients.c.id == patient_id).values(identifier_system=system)
        )

    def set_display_name(self, patient_id: int, display_name: str) -> None:
        self.conn.execute(
            update(patients).where(patients.c.id == patient_id).values(display_name=display_name)
        )

    # enrollments --------------------------------------------------------------

    def enrollments_of(self, patient_id: int) -> list[Enrollment]:
        rows = self.conn.execute(q.ENROLLMENTS_OF_PATIENT, {"patient_id": patient_id})
        return [converters.enrollment(r._mapping) for r in rows]

    def enrollments_of_identifier(self, identifier: str) -> list[Enrollment]:
        """Every enrollment of the patient with this identifier, oldest first (one query)."""
        rows = self._select(
            "enrollments_of_identifier", q.ENROLLMENTS_OF_IDENTIFIER, {"identifier": identifier}
        )
        return [converters.enrollment(r) for r in rows]

    def enrollment(self, enrollment_id: int) -> Enrollment:
        return converters.enrollment(
            self.conn.execute(q.ENROLLMENT_BY_ID, {"enrollment_id": enrollment_id}).one()._mapping
        )

    def enrollment_or_none(self, enrollment_id: int) -> Enrollment | None:
        row = self.conn.execute(q.ENROLLMENT_BY_ID, {"enrollment_id": enrollment_id}).first()
        return converters.enrollment(row._mapping) if row else None

    def list_enrollments(
        self, *, pathway: str | None = None, state: str | None = None, open_only: bool = False
    ) -> list[Enrollment]:
        query = q.ENROLLMENT_SELECT
        if pathway:
            query = query.where(enrollments.c.pathway_id == pathway)
        if state:
            query = query.where(enrollments.c.state == state)
        if open_only:
            query = query.where(enrollments.c.closed_at.is_(None))
        query = query.order_by(enrollments.c.entered_state_at, enrollments.c.id)
        return [converters.enrollment(r._mapping) for r in self.conn.execute(query)]

    def latest_event_at(self) -> datetime | None:
        """When the latest change of any enrollment took effect (None: no enrollments)."""
        value = self.conn.execute(select(func.max(enrollments.c.last_event_at))).scalar()
        return None if value is None else from_storage(value)

    def add_enrollment(
        self,
        *,
        patient_id: int,
        pathway: str,
        version: int,
        profile: str,
        state: str,
        at: datetime,
        chain_head: str,
        referral: tuple[str | None, str] | None = None,
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
                    chain_head=chain_head,
                    referral_system=referral[0] if referral else None,
                    referral_value=referral[1] if referral else None,
                )
            )
        except IntegrityError:
            raise AlreadyEnrolled(f"the patient already has an open enrollment in {pathway}") from None
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def save_state(self, enrollment: Enrollment, position: Position, chain_head: str) -> None:
        """Move `enrollment` to `position` if nobody else changed it since it was read (the
        event that moves it is written first: the database checks the two agree)."""
        rowcount, _ = self._execute_write(
            "save_state",
            q.SAVE_STATE,
            {
                "b_id": enrollment.id,
                "b_expected": enrollment.version,
                "b_state": position.state,
                "b_held_from": position.held_from,
                "b_entered_state_at": position.entered_state_at,
                "b_closed_at": position.closed_at,
                "b_last_event_at": position.last_event_at,
                "b_last_seq": position.last_seq,
                "b_version": enrollment.version + 1,
                "b_chain_head": chain_head,
            },
        )
        if rowcount != 1:
            raise ConcurrencyError(_CONFLICT.format(pathway=enrollment.pathway))

    def touch(self, enrollment: Enrollment, chain_head: str) -> None:
        """Bump the enrollment's version (a record or correction) and move its chain's head,
        refusing a concurrent change."""
        rowcount, _ = self._execute_write(
            "touch",
            q.TOUCH,
            {
                "b_id": enrollment.id,
                "b_expected": enrollment.version,
                "b_version": enrollment.version + 1,
                "b_chain_head": chain_head,
            },
        )
        if rowcount != 1:
            raise ConcurrencyError(_CONFLICT.format(pathway=enrollment.pathway))

    def repin(
        self,
        enrollment: Enrollment,
        *,
        pathway_version: int,
        last_seq: int,
        last_event_at: datetime,
        chain_head: str,
    ) -> None:
        """Move an enrollment to another version of its pathway (state unchanged; the migrate
        event is written first)."""
        result = self.conn.execute(
            update(enrollments)
            .where(and_(enrollments.c.id == enrollment.id, enrollments.c.version == enrollment.version))
            .values(
                pathway_version=pathway_version,
                last_seq=last_seq,
                last_event_at=last_event_at,
                version=enrollment.version + 1,
                chain_head=chain_head,
            )
        )
        if result.rowcount != 1:
            raise ConcurrencyError(_CONFLICT.format(pathway=enrollment.pathway))

    # events -------------------------------------------------------------------
    def add_event(self, event: Event) -> None:
        try:
            row = EventRow(
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
                chain_seq=event.chain_seq,
                hash=event.hash,
                voids=event.voids,
            )
            self._execute_write("insert_event", q.INSERT_EVENT, row._asdict())
        except (IntegrityError, sqlite3.IntegrityError):
            raise ConcurrencyError(
                "another change to this enrollment was recorded at the same moment; retry"
            ) from None

    def events_of(self, enrollment_ids: Sequence[int]) -> list[Event]:
        if not enrollment_ids:
            return []
        rows = self.conn.execute(q.EVENTS_OF, {"ids": list(enrollment_ids)})
        return [converters.event(r._mapping) for r in rows]

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
        chain_seq: int,
        hash: str,
    ) -> int:
        row = NewObservationRow(
            enrollment_id=enrollment_id,
            kind=kind,
            data=dict(data),
            effective_at=effective_at,
            recorded_at=recorded_at,
            actor=actor,
            role=role,
            chain_seq=chain_seq,
            hash=hash,
        )
        _, key = self._execute_write("insert_observation", q.INSERT_OBSERVATION, row._asdict())
        return int(key)

    def observations_of(
        self, enrollment_ids: Sequence[int], *, include_errors: bool = True
    ) -> list[Observation]:
        if not enrollment_ids:
            return []
        query = q.OBSERVATIONS_OF if include_errors else q.ACTIVE_OBSERVATIONS_OF
        return [
            converters.observation(r._mapping)
            for r in self.conn.execute(query, {"ids": list(enrollment_ids)})
        ]

    def patient_observations(self, patient_id: int) -> list[Observation]:
        """Every observation of every enrollment of a patient, corrections included (the
        record judged by guards leaves out those entered in error: `pathway.domain.asof`)."""
        rows = self._select("patient_observations", q.OBSERVATIONS_OF_PATIENT, {"patient_id": patient_id})
        return [converters.observation(r) for r in rows]

    def patient_events(self, patient_id: int) -> list[Event]:
        """Every event of every enrollment of a patient."""
        rows = self._select("patient_events", q.EVENTS_OF_PATIENT, {"patient_id": patient_id})
        return [converters.event(r) for r in rows]

    def observation(self, observation_id: int) -> Observation | None:
        row = self.conn.execute(select(observations).where(observations.c.id == observation_id)).first()
        return converters.observation(row._mapping) if row else None

    def mark_entered_in_error(
        self,
        observation_id: int,
        *,
        reason: str,
        actor: str,
        role: str,
        at: datetime,
        recorded: datetime,
        chain_seq: int,
        hash: str,
    ) -> None:
        self.conn.execute(
            update(observations)
            .where(and_(observations.c.id == observation_id, observations.c.entered_in_error.is_(False)))
            .values(
                entered_in_error=True,
                error_reason=reason,
                error_actor=actor,
                error_at=at,
                error_role=role,
                error_recorded_at=recorded,
                error_chain_seq=chain_seq,
                error_hash=hash,
            )
        )

    # outbox -------------------------------------------------------------------
    def add_outbox(
        self, *, type: str, enrollment_id: int | None, payload: Mapping[str, Any], at: datetime
    ) -> str:
        message_id = str(payload.get("id") or uuid.uuid4())
        self.messages.append(dict(payload))
        row = NewMessageRow(
            message_id=message_id,
            type=type,
            enrollment_id=enrollment_id,
            payload=dict(payload),
            created_at=at,
        )
        self._execute_write("insert_outbox", q.INSERT_OUTBOX, row._asdict())
        return message_id
