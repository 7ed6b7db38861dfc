"""The unit-of-work contract (`pathway.store.unit_of_work`), run against each writer that
implements it, on SQLite and PostgreSQL: `Tx` (each command against the database),
`StagedTx` (a staged batch, written at the end) and, for the writes, `BulkTx` (referral
import). The same calls must leave the same rows, whichever writer made them, and the
reads must see what was written."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pathway.domain import envelopes
from pathway.domain.effects import Position
from pathway.domain.facts import Event
from pathway.store.bulk import BulkTx
from pathway.store.repository import Store
from pathway.store.staged import StagedTx
from pathway.store.tx import Tx
from pathway.store.unit_of_work import UnitOfWork, Writes
from tests.conftest import _pg_database

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
T1 = datetime(2026, 1, 12, 10, tzinfo=UTC)
RECORDED = datetime(2026, 2, 1, 8, 30, 15, 123456, tzinfo=UTC)


def plain(tx: Tx) -> Tx:
    return tx


def staged(tx: Tx) -> StagedTx:
    return StagedTx(tx)


def bulk(tx: Tx) -> BulkTx:
    return BulkTx(tx)


WRITERS: dict[str, Callable[[Tx], Any]] = {"tx": plain, "staged": staged, "bulk": bulk}


def enroll(uow: Writes, identifier: str, message_id: str) -> int:
    """What `Clinic.enroll` asks of a unit of work, for a new patient."""
    patient = uow.add_patient(identifier, "Jo Example", RECORDED)
    enrollment = uow.add_enrollment(
        patient_id=patient, pathway="p-one", version=2, profile="basic", state="start", at=T0, chain_head="h1"
    )
    event = Event(
        enrollment, 1, "enroll", None, "start", "sam", "nurse", T0, RECORDED, None, {"profile": "basic"}
    )
    uow.add_event(replace(event, chain_seq=1, hash="h1"))
    message = envelopes.opened(
        enrollment=enrollment,
        patient=identifier,
        pathway="p-one",
        version=2,
        state="start",
        effective=T0,
        recorded=RECORDED,
        actor="sam",
        role="nurse",
        message_id=message_id,
    )
    uow.add_outbox(type=message["type"], enrollment_id=enrollment, payload=message, at=RECORDED)
    return patient


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the writers write, without the numbers the database chooses."""
    queries = {
        "patients": "SELECT identifier, display_name, created_at FROM patients ORDER BY identifier",
        "enrollments": "SELECT p.identifier, pathway_id, pathway_version, profile, state, held_from, "
        "entered_state_at, opened_at, closed_at, last_event_at, last_seq, version "
        "FROM enrollments n JOIN patients p ON p.id = n.patient_id ORDER BY p.identifier",
        "events": 'SELECT p.identifier, seq, "trigger", from_state, to_state, actor, role, effective_at, '
        "recorded_at, reason, payload FROM events e JOIN enrollments n ON n.id = e.enrollment_id "
        "JOIN patients p ON p.id = n.patient_id ORDER BY p.identifier, seq",
        "observations": "SELECT p.identifier, kind, data, effective_at, recorded_at, actor, role, "
        "entered_in_error FROM observations o JOIN enrollments n ON n.id = o.enrollment_id "
        "JOIN patients p ON p.id = n.patient_id ORDER BY p.identifier, o.effective_at",
        "outbox": "SELECT message_id, type, payload, created_at, delivered_at, attempts FROM outbox "
        "ORDER BY message_id",
    }
    with store.read() as tx:
        found = {}
        for table, sql in queries.items():
            rows = []
            for row in tx.conn.execute(text(sql)):
                values = []
                for value in row:
                    if isinstance(value, str) and value.startswith("{"):
                        value = json.loads(value)  # JSON text on SQLite, a dict on PostgreSQL
                    if isinstance(value, dict):
                        value = {k: v for k, v in value.items() if k != "enrollment"}  # a database number
                    values.append(value)
                rows.append(tuple(str(v) for v in values))
            found[table] = rows
    return found


def written(db_url: str, writer: str, scenario: Callable[[Any], None]) -> dict[str, list[tuple[Any, ...]]]:
    store = Store.open(db_url)
    try:
        with store.write() as tx:
            uow = WRITERS[writer](tx)
            scenario(uow)
            if writer != "tx":
                uow.flush()
        return dump(store)
    finally:
        store.close()


@pytest.fixture
def reference_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'reference.db'}"
    else:
        yield from _pg_database()


@pytest.mark.parametrize("writer", ["staged", "bulk"])
def test_every_writer_writes_an_enrollment_as_the_database_writer_does(
    db_url: str, reference_url: str, writer: str
) -> None:
    def scenario(uow: Writes) -> None:
        enroll(uow, "A1", "00000000-0000-4000-8000-000000000001")
        renamed = enroll(uow, "A2", "00000000-0000-4000-8000-000000000002")
        uow.set_display_name(renamed, "Jo Renamed")

    rows = written(db_url, writer, scenario)
    assert [r[1] for r in rows["patients"]] == ["Jo Example", "Jo Renamed"]
    assert len(rows["enrollments"]) == len(rows["events"]) == len(rows["outbox"]) == 2
    assert rows == written(reference_url, "tx", scenario)


def commands(uow: UnitOfWork) -> dict[str, Any]:
    """What record and advance ask of a unit of work, read back through the same one."""
    patient = enroll(uow, "B1", "00000000-0000-4000-8000-000000000003")
    (enrollment,) = uow.enrollments_of_identifier("B1")
    assert uow.find_patient("B1") is not None and uow.find_patient("B1").id == patient  # type: ignore[union-attr]
    uow.touch(enrollment, "h2")
    enrollment = uow.enrollment(enrollment.id)
    observation = uow.add_observation(
        enrollment_id=enrollment.id,
        kind="note",
        data={"score": 7, "when": "2026-01-01"},
        effective_at=T1,
        recorded_at=RECORDED,
        actor="dr.a",
        role="doctor",
        chain_seq=2,
        hash="h2",
    )
    event = Event(enrollment.id, 2, "go", "start", "middle", "dr.a", "doctor", T1, RECORDED, "because")
    uow.add_event(replace(event, chain_seq=3, hash="h3"))  # the event first, then the state
    uow.save_state(enrollment, Position("middle", None, T1, None, T1, 2), "h3")
    after = uow.enrollment(enrollment.id)
    return {
        "version": (enrollment.version, after.version),
        "state": (after.state, after.entered_state_at, after.last_seq, after.chain_head),
        "observations": [
            (o.id == observation, o.kind, dict(o.data)) for o in uow.patient_observations(patient)
        ],
        "events": [(e.seq, e.trigger, e.to_state) for e in uow.patient_events(patient)],
        "family": [e.pathway for e in uow.enrollments_of(patient)],
    }


@pytest.mark.parametrize("writer", ["tx", "staged"])
def test_the_whole_unit_of_work_reads_what_it_wrote(db_url: str, writer: str) -> None:
    seen: list[dict[str, Any]] = []
    rows = written(db_url, writer, lambda uow: seen.append(commands(uow)))
    assert seen == [
        {
            "version": (2, 3),
            "state": ("middle", T1, 2, "h3"),
            "observations": [(True, "note", {"score": 7, "when": "2026-01-01"})],
            "events": [(1, "enroll", "start"), (2, "go", "middle")],
            "family": ["p-one"],
        }
    ]
    assert [r[4] for r in rows["enrollments"]] == ["middle"]
    assert [r[1] for r in rows["events"]] == ["1", "2"]
    assert [r[1] for r in rows["observations"]] == ["note"]
