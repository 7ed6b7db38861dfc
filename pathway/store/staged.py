"""A staged batch: commands on new patients run against memory, then are written at once.

`Clinic.enroll`, `record` and `advance` run unchanged (every check, guard and
role as always) against `StagedTx`, which keeps what they write in memory and
answers their reads from it. When the batch ends, `flush` writes the final rows
with one executemany per table inside the batch's own write transaction, so the
database holds exactly what the same commands one by one would have left: the
same patients, enrollments (in their final state), events in command order (the
`stays` trigger sees them in that order too), observations and outbox messages.

Ids are allocated as each row is made (observation and enrollment ids appear in
outbox messages), the way bulk import allocates them: on SQLite max(id)+1 under
the write lock the IMMEDIATE transaction already holds; on PostgreSQL from the
tables' sequences. A command that fails is undone in memory alone, as a
savepoint would undo it.

Only patients first enrolled inside the batch can be worked on: every read a
command makes is then answered from memory. Anything else is refused with a
StoreError rather than answered wrongly. Used by `simulate`, where per-command
SQL costs several times the engine's own work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pathway.domain.effects import Position, moved
from pathway.domain.record import Enrollment, Event, Observation
from pathway.errors import ConcurrencyError, StoreError
from pathway.store.bulk import BulkTx
from pathway.store.rows import EnrollmentRow, ObservationRow
from pathway.store.rows import PatientRow as PatientInsert
from pathway.store.tx import Tx
from pathway.store.unit_of_work import PatientRow, UnitOfWork

_MISSING = object()


class StagedTx:
    """The unit of work (`unit_of_work.UnitOfWork`) over memory; `flush` writes the result."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.bulk = BulkTx(tx)
        self.messages = tx.messages  # the outer transaction's list: after-commit hooks see them
        self.patients: dict[str, PatientRow] = {}
        self.identifiers: dict[int, str] = {}  # patient id -> identifier
        self.created: dict[int, datetime] = {}  # patient id -> created_at
        self.enrollments: dict[int, Enrollment] = {}
        self.referrals: dict[int, tuple[str | None, str]] = {}  # enrollment id -> the referral it came from
        self.families: dict[int, list[int]] = {}  # patient id -> enrollment ids, oldest first
        self.events: list[Event] = []
        self.observations: list[Observation] = []
        self.observation_texts: dict[int, str] = {}  # observation id -> its data as JSON text
        self.per_patient_events: dict[int, list[Event]] = {}
        self.per_patient_observations: dict[int, list[Observation]] = {}
        self.outbox: list[tuple[str, str, int | None, Mapping[str, Any], datetime]] = []
        self._journal: list[tuple[dict[Any, Any], Any, Any]] = []  # (mapping, key, old value)

    # undo -------------------------------------------------------------------------
    def mark(self) -> tuple[int, ...]:
        """A point to return to if the command that follows fails."""
        return (
            len(self._journal),
            len(self.events),
            len(self.observations),
            len(self.outbox),
            len(self.messages),
        )

    def undo(self, mark: tuple[int, ...]) -> None:
        """Forget everything written since `mark` (ids taken stay unused, as after a rollback)."""
        journal, n_events, n_observations, n_outbox, n_messages = mark
        # First the per-patient lists (they need the enrollments the journal may take away).
        for event in self.events[n_events:]:
            self.per_patient_events[self.enrollments_patient(event.enrollment_id)].remove(event)
        for observation in self.observations[n_observations:]:
            patient_id = self.enrollments_patient(observation.enrollment_id)
            self.per_patient_observations[patient_id].remove(observation)
        while len(self._journal) > journal:
            mapping, key, old = self._journal.pop()
            if old is _MISSING:
                del mapping[key]
            else:
                mapping[key] = old
        del self.events[n_events:]
        del self.observations[n_observations:]
        del self.outbox[n_outbox:]
        del self.messages[n_messages:]

    def enrollments_patient(self, enrollment_id: int) -> int:
        return self.enrollments[enrollment_id].patient_id

    def _set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _id(self, table: str) -> int:
        return self.bulk._id(table)

    # patients -----------------------------------------------------------------------
    def _refuse_known(self, identifier: str) -> None:
        if self.bulk.writer.patients([identifier]):
            raise StoreError(
                "a patient of this batch is already in the database: it works only on patients "
                "it enrolls itself"
            )

    def find_patient(self, identifier: str) -> PatientRow | None:
        row = self.patients.get(identifier)
        if row is None:
            self._refuse_known(identifier)
        return row

    def add_patient(
        self, identifier: str, display_name: str | None, at: datetime, system: str | None = None
    ) -> int:
        patient_id = self._id("patients")
        self._set(self.patients, identifier, PatientRow(patient_id, identifier, display_name, system))
        self._set(self.identifiers, patient_id, identifier)
        self._set(self.created, patient_id, at)
        self._set(self.families, patient_id, [])
        return patient_id

    def set_display_name(self, patient_id: int, display_name: str) -> None:
        row = self.patients[self.identifiers[patient_id]]
        self._set(self.patients, row.identifier, row._replace(display_name=display_name))
        for enrollment_id in self.families[patient_id]:
            enrollment = self.enrollments[enrollment_id]
            self._set(self.enrollments, enrollment_id, replace(enrollment, display_name=display_name))

    def set_identifier_system(self, patient_id: int, system: str) -> None:
        row = self.patients[self.identifiers[patient_id]]
        self._set(self.patients, row.identifier, row._replace(identifier_system=system))

    # enrollments --------------------------------------------------------------------
    def enrollments_of(self, patient_id: int) -> list[Enrollment]:
        return [self.enrollments[i] for i in self.families.get(patient_id, ())]

    def enrollments_of_identifier(self, identifier: str) -> list[Enrollment]:
        row = self.find_patient(identifier)
        return [] if row is None else self.enrollments_of(row.id)

    def enrollment(self, enrollment_id: int) -> Enrollment:
        return self.enrollments[enrollment_id]

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
        patient = self.patients[self.identifiers[patient_id]]
        enrollment_id = self._id("enrollments")
        enrollment = Enrollment(
            id=enrollment_id,
            patient=patient.identifier,
            display_name=patient.display_name,
            patient_id=patient_id,
            pathway=pathway,
            pathway_version=version,
            profile=profile,
            state=state,
            held_from=None,
            entered_state_at=at,
            opened_at=at,
            closed_at=None,
            version=1,
            last_event_at=at,
            last_seq=1,  # the enroll event
            chain_head=chain_head,
        )
        if referral is not None:
            self._set(self.referrals, enrollment_id, referral)
        self._set(self.enrollments, enrollment_id, enrollment)
        self._set(self.families, patient_id, [*self.families[patient_id], enrollment_id])
        return enrollment_id

    def _current(self, enrollment: Enrollment) -> Enrollment:
        current = self.enrollments[enrollment.id]
        if current.version != enrollment.version:
            raise ConcurrencyError(
                f"the enrollment ({enrollment.pathway}) was changed since it was read; retry"
            )
        return current

    def save_state(self, enrollment: Enrollment, position: Position, chain_head: str) -> None:
        current = self._current(enrollment)
        changed = moved(current, position, version=current.version + 1, chain_head=chain_head)
        self._set(self.enrollments, enrollment.id, changed)

    def touch(self, enrollment: Enrollment, chain_head: str) -> None:
        current = self._current(enrollment)
        changed = replace(current, version=current.version + 1, chain_head=chain_head)
        self._set(self.enrollments, enrollment.id, changed)

    # events and observations ------------------------------------------------------------
    def add_event(self, event: Event) -> None:
        self.events.append(event)
        self.per_patient_events.setdefault(self.enrollments_patient(event.enrollment_id), []).append(event)

    def patient_events(self, patient_id: int) -> list[Event]:
        found = self.per_patient_events.get(patient_id, [])
        return sorted(found, key=lambda e: (e.effective_at, e.enrollment_id, e.seq))

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
        text = json.dumps(dict(data))  # written by flush
        observation = Observation(
            id=self._id("observations"),
            enrollment_id=enrollment_id,
            kind=kind,
            # As the database would give it back: the stored (JSON) form, not shared with the caller.
            data=json.loads(text),
            effective_at=effective_at,
            recorded_at=recorded_at,
            actor=actor,
            role=role,
            chain_seq=chain_seq,
            hash=hash,
        )
        self.observations.append(observation)
        self.observation_texts[observation.id] = text
        patient_id = self.enrollments_patient(enrollment_id)
        self.per_patient_observations.setdefault(patient_id, []).append(observation)
        return observation.id

    def patient_observations(self, patient_id: int) -> list[Observation]:
        found = self.per_patient_observations.get(patient_id, [])
        return sorted(found, key=lambda o: (o.effective_at, o.id))

    # outbox ---------------------------------------------------------------------------
    def add_outbox(
        self, *, type: str, enrollment_id: int | None, payload: Mapping[str, Any], at: datetime
    ) -> str:
        message_id = str(payload.get("id") or uuid.uuid4())
        self.messages.append(dict(payload))
        self.outbox.append((message_id, type, enrollment_id, dict(payload), at))
        return message_id

    def __getattr__(self, name: str) -> Any:
        raise StoreError(f"{name} is not available inside a staged batch (only enroll, record, advance)")

    # the end ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything kept, one executemany per table, inside the batch's transaction."""
        bulk, time = self.bulk, self.bulk.writer.time
        for row in sorted(self.patients.values()):
            bulk.writer.add(
                PatientInsert(
                    row.id,
                    row.identifier,
                    row.display_name,
                    time(self.created[row.id]),
                    row.identifier_system,
                ),
            )
        for _, e in sorted(self.enrollments.items()):
            bulk.writer.add(
                EnrollmentRow(
                    id=e.id,
                    patient_id=e.patient_id,
                    pathway_id=e.pathway,
                    pathway_version=e.pathway_version,
                    profile=e.profile,
                    state=e.state,
                    held_from=e.held_from,
                    entered_state_at=time(e.entered_state_at),
                    opened_at=time(e.opened_at),
                    closed_at=None if e.closed_at is None else time(e.closed_at),
                    last_event_at=time(e.last_event_at),
                    last_seq=e.last_seq,
                    version=e.version,
                    chain_head=e.chain_head,
                    referral_system=self.referrals.get(e.id, (None, None))[0],
                    referral_value=self.referrals.get(e.id, (None, None))[1],
                ),
            )
        for o in self.observations:
            bulk.writer.add(
                ObservationRow(
                    id=o.id,
                    enrollment_id=o.enrollment_id,
                    kind=o.kind,
                    data=self.observation_texts[o.id],
                    effective_at=time(o.effective_at),
                    recorded_at=time(o.recorded_at),
                    actor=o.actor,
                    role=o.role,
                    chain_seq=o.chain_seq,
                    hash=o.hash,
                ),
            )
        for event in self.events:
            bulk.add_event(event)
        for message_id, type_, enrollment_id, payload, at in self.outbox:
            bulk.outbox_text(message_id, type_, enrollment_id, json.dumps(payload), at)
        bulk.flush()


def _conforms(tx: Tx) -> UnitOfWork:
    return StagedTx(tx)  # mypy checks StagedTx against the protocol here
