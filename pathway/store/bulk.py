"""Bulk enrollment (referral import): many enrollments in one transaction, as plain tuples.

Each new enrollment gets exactly the rows `Clinic.enroll` writes: its patient if
new (or the new display name of a known one), the enrollment in the pathway's
initial state, the enroll event (seq 1) and the `enrollment.opened` outbox
message built by `pathway.domain.envelopes`, so nothing downstream can tell an
imported enrollment from an enrolled one.

Per row, SQLAlchemy Core costs several times the insert itself (bench/import.py),
so `BulkTx` keeps the rows as tuples of the tables' columns (`rows.py`) and writes
each table with one executemany; ids are allocated up front so the four tables can
be written without reading ids back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.domain import envelopes
from pathway.domain.effects import ENROLL
from pathway.domain.envelopes import OPENED, OpenedText
from pathway.domain.record import Event
from pathway.domain.timeutil import iso
from pathway.store.rows import EnrollmentRow, EventRow, OutboxRow, PatientRow, RowWriter

if TYPE_CHECKING:
    from pathway.store.repository import Tx
    from pathway.store.unit_of_work import Writes

#: One enrollment to make: (source line, patient identifier, pathway id, pathway version,
#: profile, effective time, initial state, display name or None); a `referrals.Referral` is one.
NewEnrollment = tuple[int, str, str, int, str, datetime, str, str | None]

#: The SQLite page cache while a batch is written (negative: KiB, SQLite's convention).
SQLITE_CACHE_KIB = -65536
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_BLOCK = 1000  # ids reserved at a time (PostgreSQL: one nextval query per block)


def uuid4_texts(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text: what str(uuid.uuid4()) gives, four times faster."""
    h = os.urandom(16 * count).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


class BulkTx:
    """The writes of a unit of work (`unit_of_work.Writes`) kept as rows, written by `flush`.

    `add_patient` and `add_enrollment` take ids reserved from the database; `add_event`
    and `add_outbox` keep the rows in the order given (the database numbers them so)."""

    def __init__(self, tx: Tx) -> None:
        self.writer = RowWriter(tx)
        self.messages = tx.messages
        self._ids: dict[str, Iterator[int]] = {}
        self._renamed: list[tuple[str, int]] = []

    def reserve(self, table: str, count: int) -> None:
        """Reserve `count` ids of `table` for the rows that follow (one query, not one per row)."""
        self._ids[table] = iter(self.writer.allocate(table, count))

    def _id(self, table: str) -> int:
        found = next(self._ids.get(table, iter(())), None)
        if found is None:
            self.reserve(table, _BLOCK)
            found = next(self._ids[table])
        return found

    # Writes -----------------------------------------------------------------------------
    def add_patient(self, identifier: str, display_name: str | None, at: datetime) -> int:
        patient_id = self._id("patients")
        self.writer.add("patients", PatientRow(patient_id, identifier, display_name, self.writer.time(at)))
        return patient_id

    def set_display_name(self, patient_id: int, display_name: str) -> None:
        self._renamed.append((display_name, patient_id))

    def add_enrollment(
        self, *, patient_id: int, pathway: str, version: int, profile: str, state: str, at: datetime
    ) -> int:
        enrollment_id = self._id("enrollments")
        stamp = self.writer.time(at)
        self.writer.add(
            "enrollments",
            EnrollmentRow(
                id=enrollment_id,
                patient_id=patient_id,
                pathway_id=pathway,
                pathway_version=version,
                profile=profile,
                state=state,
                entered_state_at=stamp,
                opened_at=stamp,
                last_event_at=stamp,
                last_seq=1,  # the enroll event
                version=1,
            ),
        )
        return enrollment_id

    def add_event(self, event: Event) -> None:
        self.writer.add("events", self.event_row(event))

    def event_row(self, event: Event, payload_text: str | None = None) -> tuple[Any, ...]:
        time = self.writer.time
        row: tuple[Any, ...] = EventRow(
            enrollment_id=event.enrollment_id,
            seq=event.seq,
            trigger=event.trigger,
            from_state=event.from_state,
            to_state=event.to_state,
            actor=event.actor,
            role=event.role,
            effective_at=time(event.effective_at),
            recorded_at=time(event.recorded_at),
            reason=event.reason,
            payload=payload_text
            if payload_text is not None
            else self.writer.json(dict(event.payload) or None),
        )
        return row

    def add_outbox(
        self, *, type: str, enrollment_id: int | None, payload: Mapping[str, Any], at: datetime
    ) -> str:
        message_id = str(payload["id"])
        self.messages.append(dict(payload))
        self.outbox_text(message_id, type, enrollment_id, self.writer.json(dict(payload)) or "", at)
        return message_id

    def outbox_text(
        self, message_id: str, type_: str, enrollment_id: int | None, text: str, at: datetime | Any
    ) -> None:
        """An outbox row whose payload is already JSON text (`at` a datetime or a stored time)."""
        stamp = self.writer.time(at) if isinstance(at, datetime) else at
        self.writer.add("outbox", OutboxRow(message_id, type_, enrollment_id, text, stamp))

    def flush(self) -> None:
        self.writer.update("UPDATE patients SET display_name = ? WHERE id = ?", self._renamed)
        self._renamed = []
        self.writer.flush()


def _conforms(tx: Tx) -> Writes:
    return BulkTx(tx)  # mypy checks BulkTx against the protocol here


def enroll_many(
    tx: Tx, batch: Sequence[NewEnrollment], *, actor: str, role: str, recorded: datetime
) -> tuple[int, int]:
    """Enroll each of `batch` (validated; one row per patient and pathway) unless the patient
    already has an open enrollment in the pathway or one opened at the same time (the same
    referral imported before). Returns (enrolled, skipped)."""
    bulk = BulkTx(tx)
    if not bulk.writer.sqlite:
        return _enroll(bulk, batch, actor=actor, role=role, recorded=recorded)
    # A batch touches more index pages than SQLite's default 2 MB page cache holds; a larger
    # cache while it is written saves spilling and re-reading them (given back afterwards).
    (cache_size,) = tx.dbapi.execute("PRAGMA cache_size").fetchone()
    tx.dbapi.execute(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
    try:
        return _enroll(bulk, batch, actor=actor, role=role, recorded=recorded)
    finally:
        tx.dbapi.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _enroll(
    bulk: BulkTx, batch: Sequence[NewEnrollment], *, actor: str, role: str, recorded: datetime
) -> tuple[int, int]:
    db = bulk.writer
    identifiers = list(dict.fromkeys(r[1] for r in batch))
    known = {row[0]: (row[1], row[2]) for row in db.patients(identifiers)}
    todo: Sequence[NewEnrollment] = batch
    if known:
        wanted = {(known[r[1]][0], r[2]): db.time(r[5]) for r in batch if r[1] in known}
        blocked = {
            (patient_id, pathway)
            for patient_id, pathway, opened, closed in db.enrollments([k[0] for k in known.values()])
            if (patient_id, pathway) in wanted and (closed is None or opened == wanted[patient_id, pathway])
        }
        todo = [r for r in batch if r[1] not in known or (known[r[1]][0], r[2]) not in blocked]
    if not todo:
        return 0, len(batch)

    # Names as successive enrolls would leave them: the last one given wins.
    names = {r[1]: r[7] for r in todo if r[7]}
    patient_ids = {identifier: row[0] for identifier, row in known.items()}
    new = [identifier for identifier in identifiers if identifier not in known]
    bulk.reserve("patients", len(new))
    for identifier in new:
        patient_ids[identifier] = bulk.add_patient(identifier, names.get(identifier), recorded)
    for identifier, (patient_id, name) in known.items():
        if names.get(identifier, name) != name:
            bulk.set_display_name(patient_id, names[identifier])

    stamp = db.time(recorded)
    texts: dict[tuple[str, int, str], OpenedText] = {}
    payloads: dict[str, str] = {}
    effective: dict[datetime, str] = {}
    bulk.reserve("enrollments", len(todo))
    for (_, patient, pathway, version, profile, at, state, _), message_id in zip(
        todo, uuid4_texts(len(todo)), strict=True
    ):
        enrollment_id = bulk.add_enrollment(
            patient_id=patient_ids[patient],
            pathway=pathway,
            version=version,
            profile=profile,
            state=state,
            at=at,
        )
        payload = payloads.get(profile)
        if payload is None:
            payload = payloads[profile] = db.json({"profile": profile, "source": "import"}) or ""
        event = Event(enrollment_id, 1, ENROLL, None, state, actor, role, at, recorded)
        db.add("events", bulk.event_row(event, payload))
        template = texts.get((pathway, version, state))
        if template is None:
            template = texts[pathway, version, state] = OpenedText(
                pathway=pathway, version=version, state=state, recorded=recorded, actor=actor, role=role
            )
        when = effective.get(at)
        if when is None:
            when = effective[at] = iso(at) or ""
        text = template.text(message_id=message_id, enrollment=enrollment_id, patient=patient, effective=when)
        bulk.outbox_text(message_id, OPENED, enrollment_id, text, stamp)
        bulk.messages.append(
            envelopes.opened(
                enrollment=enrollment_id,
                patient=patient,
                pathway=pathway,
                version=version,
                state=state,
                effective=at,
                recorded=recorded,
                actor=actor,
                role=role,
                message_id=message_id,
            )
        )
    bulk.flush()
    return len(todo), len(batch) - len(todo)
