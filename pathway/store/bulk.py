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

from pathway.domain import chain
from pathway.domain.effects import ENROLL
from pathway.domain.envelopes import OPENED, OpenedMany
from pathway.domain.episodes import Span
from pathway.domain.facts import Event
from pathway.domain.timeutil import from_storage, iso
from pathway.store.rows import EventRow, NewEnrollmentRow, NewMessageRow, PatientRow, RowWriter, row_type
from pathway.store.tables import enrollments, events

if TYPE_CHECKING:
    from pathway.store.tx import Tx
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


#: An imported referral's enrollment (no referral identifier) and enroll event (from no
#: state, for no reason, voiding nothing).
ImportEnrollmentRow = row_type(
    enrollments, with_id=True, leave_out=("held_from", "closed_at", "referral_system", "referral_value")
)
EnrollEventRow = row_type(events, with_id=False, leave_out=("from_state", "reason", "voids"))

# `enroll_many` writes its rows, built in one loop as plain tuples in the order of their row
# types' fields (which come from tables.py): the orders are checked here, on import.
_ORDERS = {
    ImportEnrollmentRow: "id patient_id pathway_id pathway_version profile state entered_state_at opened_at "
    "last_event_at last_seq version chain_head",
    EnrollEventRow: "enrollment_id seq trigger to_state actor role effective_at recorded_at payload "
    "chain_seq hash",
    NewMessageRow: "message_id type enrollment_id payload created_at",
    PatientRow: "id identifier display_name created_at identifier_system",
}
for _kind, _order in _ORDERS.items():
    if _kind._fields != tuple(_order.split()):
        raise RuntimeError(f"{_kind.__name__} is now {_kind._fields}: update enroll_many's tuples")


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
    def add_patient(
        self, identifier: str, display_name: str | None, at: datetime, system: str | None = None
    ) -> int:
        patient_id = self._id("patients")
        self.writer.add(PatientRow(patient_id, identifier, display_name, self.writer.time(at), system))
        return patient_id

    def set_display_name(self, patient_id: int, display_name: str) -> None:
        self._renamed.append((display_name, patient_id))

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
        enrollment_id = self._id("enrollments")
        stamp = self.writer.time(at)
        self.writer.add(
            NewEnrollmentRow(
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
                chain_head=chain_head,
                referral_system=referral[0] if referral else None,
                referral_value=referral[1] if referral else None,
            )
        )
        return enrollment_id

    def add_event(self, event: Event) -> None:
        time = self.writer.time
        self.writer.add(
            EventRow(
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
                payload=self.writer.json(dict(event.payload) or None),
                chain_seq=event.chain_seq,
                hash=event.hash,
                voids=event.voids,
            )
        )

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
        self.writer.add(NewMessageRow(message_id, type_, enrollment_id, text, stamp))

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


def episodes(tx: Tx, identifiers: Sequence[str]) -> dict[str, list[Span]]:
    """The span (pathway, opened, closed) of every enrollment of those of `identifiers` already in the
    database, by identifier: what a referral import checks new episodes against."""
    db = RowWriter(tx)
    ids = {row[1]: row[0] for row in db.patients(list(dict.fromkeys(identifiers)))}
    found: dict[str, list[Span]] = {}
    for patient_id, pathway, opened, closed in db.enrollments(list(ids)) if ids else ():
        found.setdefault(ids[patient_id], []).append(
            Span(pathway, _stored_time(opened), None if closed is None else _stored_time(closed))
        )
    return found


def _stored_time(value: datetime | str) -> datetime:
    return from_storage(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _enroll_entry(
    pathway: str, state: str, profile: str, actor: str, role: str, recorded: datetime
) -> chain.Template:
    """The chain entry of an imported enroll event, its patient and effective time left open."""
    entry = chain.event_entry(
        patient="",
        pathway=pathway,
        chain_seq=1,
        seq=1,
        trigger=ENROLL,
        from_state=None,
        to_state=state,
        actor=actor,
        role=role,
        effective_at=recorded,
        recorded_at=recorded,
        reason=None,
        payload={"profile": profile, "source": "import"},
        voids=None,
    )
    return chain.Template(entry, ("patient", "effective_at"))


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
    add_patient, created = db.adder(PatientRow), db.time(recorded)
    for identifier, patient_id in zip(new, db.allocate("patients", len(new)), strict=True):
        patient_ids[identifier] = patient_id
        add_patient((patient_id, identifier, names.get(identifier), created, None))
    for identifier, (patient_id, name) in known.items():
        if names.get(identifier, name) != name:
            bulk.set_display_name(patient_id, names[identifier])

    stamp = db.time(recorded)
    many: dict[tuple[str, int, str], OpenedMany] = {}
    payloads: dict[str, str] = {}
    effective: dict[datetime, tuple[Any, str]] = {}
    add_enrollment, add_event = db.adder(ImportEnrollmentRow), db.adder(EnrollEventRow)
    entries: dict[tuple[str, str, str], chain.Template] = {}
    add_message, messages = db.adder(NewMessageRow), bulk.messages
    ids = iter(db.allocate("enrollments", len(todo)))
    for (_, patient, pathway, version, profile, at, state, _), message_id in zip(
        todo, uuid4_texts(len(todo)), strict=True
    ):
        enrollment_id = next(ids)
        payload = payloads.get(profile)
        if payload is None:
            payload = payloads[profile] = db.json({"profile": profile, "source": "import"}) or ""
        when = effective.get(at)
        if when is None:
            when = effective[at] = (db.time(at), iso(at) or "")
        stored, effective_text = when
        # The enroll event starts the enrollment's hash chain (pathway.domain.chain).
        entry = entries.get((pathway, state, profile))
        if entry is None:
            entry = entries[pathway, state, profile] = _enroll_entry(
                pathway, state, profile, actor, role, recorded
            )
        head = chain.link_text(None, entry.text(patient=patient, effective_at=effective_text))
        # entered_state_at, opened_at and last_event_at; last_seq and version 1 (the enroll event)
        row = (enrollment_id, patient_ids[patient], pathway, version, profile, state)
        add_enrollment((*row, stored, stored, stored, 1, 1, head))
        add_event((enrollment_id, 1, ENROLL, state, actor, role, stored, stamp, payload, 1, head))
        envelope = many.get((pathway, version, state))
        if envelope is None:
            envelope = many[pathway, version, state] = OpenedMany(
                pathway=pathway, version=version, state=state, recorded=recorded, actor=actor, role=role
            )
        text = envelope.text(
            message_id=message_id, enrollment=enrollment_id, patient=patient, effective=effective_text
        )
        add_message((message_id, OPENED, enrollment_id, text, stamp))
        messages.append(
            envelope.message(
                message_id=message_id, enrollment=enrollment_id, patient=patient, effective=effective_text
            )
        )
    bulk.flush()
    return len(todo), len(batch) - len(todo)
