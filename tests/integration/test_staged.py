"""Staged batches: the same commands, kept in memory and written at the end, leave exactly
the rows that running them one by one leaves (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pathway import Clinic
from pathway.errors import ConcurrencyError, InvalidInput, PathwayError, StoreError
from pathway.service.simulate import simulate
from pathway.store.tables import enrollments, events, observations, outbox, patients, stays
from tests.conftest import _pg_database

PATHWAY = "cervical-neurotomy"
# Set when the command ran, so they differ between any two runs.
HASHES = {"hash", "chain_head", "error_hash"}
CLOCK = {"created_at", "recorded_at"}


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables a command writes, in key order, without wall-clock columns.

    Patient, enrollment and observation ids are numbered 1, 2, ... in order: on PostgreSQL
    a staged batch skips the ids it reserved but did not use, as a rollback would."""
    tables = {"patients": patients, "enrollments": enrollments, "events": events}
    tables |= {"observations": observations, "outbox": outbox, "stays": stays}
    found: dict[str, list[dict[str, Any]]] = {}
    with Clinic.open(url) as clinic, clinic.store.read() as tx:
        for name, table in tables.items():
            # The hash chain covers the wall-clock times too: its hashes differ run to run.
            keep = [c for c in table.c if c.name not in CLOCK | HASHES and c.name != "message_id"]
            rows = tx.conn.execute(select(*keep).order_by(*table.primary_key.columns)).all()
            found[name] = [dict(r._mapping) for r in rows]
    rank = {t: {row["id"]: n for n, row in enumerate(found[t], 1)} for t in ("patients", "enrollments")}
    rank["observations"] = {row["id"]: n for n, row in enumerate(found["observations"], 1)}
    for table, rows in found.items():
        for row in rows:
            if table in rank:
                row["id"] = rank[table][row["id"]]
            if "patient_id" in row:
                row["patient_id"] = rank["patients"][row["patient_id"]]
            if row.get("enrollment_id") is not None:
                row["enrollment_id"] = rank["enrollments"][row["enrollment_id"]]
            if table == "stays":
                row["days"] = round(row["days"], 9)
            if table == "outbox":  # its own id and wall-clock time differ
                payload = {k: v for k, v in row["payload"].items() if k not in {"id", "recorded_at"}}
                payload["enrollment"] = rank["enrollments"][payload["enrollment"]]
                if "observation" in payload:
                    number = rank["observations"][payload["observation"]["id"]]
                    payload["observation"] = {**payload["observation"], "id": number}
                row["payload"] = payload
    return found


def script(clinic: Clinic, interrupt: Callable[[Callable[[], object]], None] | None = None) -> list[str]:
    """Commands that succeed and commands that fail at every stage; returns what failed.
    `interrupt`, if given, runs each command instead of calling it."""
    failed = []

    def attempt(command: Callable[[], object]) -> None:
        try:
            if interrupt is not None:
                interrupt(command)
            else:
                command()
        except PathwayError as error:
            failed.append(type(error).__name__)

    attempt(lambda: clinic.enroll("S1", PATHWAY, at="2026-01-05", name="One", role="coordinator"))
    attempt(lambda: clinic.enroll("S1", PATHWAY, at="2026-01-06"))  # already enrolled
    attempt(lambda: clinic.enroll("S2", PATHWAY, at="2026-01-07"))
    attempt(lambda: clinic.advance("S1", "start_evaluation", at="2026-01-10"))
    attempt(lambda: clinic.record("S1", "baseline", {"nrs": 99}, at="2026-01-11"))  # invalid
    attempt(
        lambda: clinic.record(
            "S1",
            "baseline",
            {
                "onset_date": "2025-06-01",
                "nrs": 7,
                "ndi": 30,
                "axial_predominant": True,
                "radiculopathy": "none",
                "red_flags": [],
            },
            at="2026-01-12",
        )
    )
    attempt(lambda: clinic.advance("S1", "schedule_blocks", at="2026-01-13"))  # no conservative care
    attempt(lambda: clinic.advance("S1", "start_evaluation", at="2026-01-09"))  # before the last event
    attempt(lambda: clinic.advance("S2", "decline", at="2026-01-14", reason="moved away", role="coordinator"))
    attempt(lambda: clinic.advance("S2", "start_evaluation", at="2026-01-15"))  # closed
    attempt(lambda: clinic.advance("S1", "hold", at="2026-01-16", reason="unwell"))
    attempt(lambda: clinic.enroll("S1", PATHWAY, at="2026-01-17", name="Renamed"))  # still open
    attempt(lambda: clinic.advance("S1", "resume", at="2026-01-20"))
    attempt(lambda: clinic.record("S3", "baseline", {}, at="2026-01-20"))  # nobody
    return failed


@pytest.fixture
def reference(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second database on the same backend as `db_url`."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'one-by-one.db'}"
    else:
        yield from _pg_database()


def test_a_staged_script_leaves_what_the_commands_one_by_one_leave(db_url: str, reference: str) -> None:
    with Clinic.open(reference, actor="dr.a", role="physician") as clinic:
        expected_failures = script(clinic)
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic, clinic.batch(staged=True):
        failures = script(clinic)
    assert failures == expected_failures
    assert {"AlreadyEnrolled", "InvalidInput", "GuardRefused", "InvalidTime"} <= set(failures)
    assert dump(db_url) == dump(reference)


def test_a_staged_cohort_is_the_cohort_made_one_command_at_a_time(db_url: str, reference: str) -> None:
    with Clinic.open(reference, actor="sim") as clinic:
        plain = simulate(clinic, 120, seed=7, until=date(2026, 11, 1), staged=False, batch=50)
    with Clinic.open(db_url, actor="sim") as clinic:
        staged = simulate(clinic, 120, seed=7, until=date(2026, 11, 1), batch=50)
    assert staged == plain
    expected, found = dump(reference), dump(db_url)
    assert len(found["events"]) > 500 and len(found["stays"]) > 300
    assert found == expected


def test_ids_go_on_after_rows_already_there(db_url: str) -> None:
    """Ids are taken after the database's own, and ordinary commands go on after them."""
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic:
        clinic.enroll("OLD", PATHWAY, at="2026-01-01")
        with clinic.batch(staged=True):
            clinic.enroll("NEW", PATHWAY, at="2026-01-02")
            clinic.advance("NEW", "start_evaluation", at="2026-01-03")
        clinic.enroll("LATER", PATHWAY, at="2026-01-04")
        clinic.advance("LATER", "start_evaluation", at="2026-01-05")
        ids = [clinic.status(p).enrollment_id for p in ("OLD", "NEW", "LATER")]
        assert ids == sorted(set(ids))
        assert [e.seq for e in clinic.history("NEW")] == [1, 2]
        assert len(clinic.outbox()) == 5


def test_patients_already_in_the_database_are_refused_and_nothing_is_written(db_url: str) -> None:
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic:
        clinic.enroll("OLD", PATHWAY, at="2026-01-01")
        for command in (
            lambda: clinic.advance("OLD", "start_evaluation", at="2026-01-03"),
            lambda: clinic.enroll("OLD", PATHWAY, at="2026-01-03"),
            lambda: clinic.history("NEW"),  # reads beyond what commands make are refused too
        ):
            with pytest.raises(StoreError) as caught, clinic.batch(staged=True):
                clinic.enroll("NEW", PATHWAY, at="2026-01-02")
                command()
            message = str(caught.value)
            assert "already in the database" in message or "staged" in message
            assert "OLD" not in message  # errors do not name patients (they reach logs)
        assert [s.patient for s in clinic.list()] == ["OLD"]
        assert clinic.history("OLD")[-1].to_state == "referred"


def test_a_failure_inside_rolls_the_whole_batch_back(db_url: str) -> None:
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic:
        with pytest.raises(RuntimeError), clinic.batch(staged=True):
            clinic.enroll("A", PATHWAY, at="2026-01-02")
            raise RuntimeError("the caller's own failure")
        assert clinic.list() == []
        assert clinic.outbox() == []


def test_simulate_twice_with_one_seed_says_what_to_do(tmp_path: Path) -> None:
    with Clinic.open(f"sqlite:///{tmp_path / 's.db'}", actor="sim") as clinic:
        simulate(clinic, 5, seed=4, until=date(2026, 11, 1))
        with pytest.raises(InvalidInput, match="already holds the cohort of seed 4"):
            simulate(clinic, 5, seed=4, until=date(2026, 11, 1))
        clinic.enroll("SIM5-000001", PATHWAY, at="2026-01-01")
        with pytest.raises(StoreError, match="a patient of this batch is already in the database"):
            simulate(clinic, 3, seed=5, until=date(2026, 11, 1))
        assert len(clinic.list()) == 5 + 1  # the batch with the clash wrote nothing


def test_a_command_that_fails_after_writing_is_undone_alone(db_url: str, reference: str) -> None:
    """The commands refuse before they write, so undo is the safety net for a failure after
    a write (a bug, a KeyboardInterrupt). Each command of the script is first made to fail
    just after its first write, then its second, ... until it runs through; the result must
    be the script's, as if the failed attempts had never been made."""
    from pathway.store.staged import StagedTx

    writes = ("add_patient", "set_display_name", "add_enrollment", "save_state", "touch")
    writes += ("add_event", "add_observation", "add_outbox")
    originals = {name: getattr(StagedTx, name) for name in writes}
    countdown = [0]  # fail when it reaches zero; 0 = off
    interrupted = [0]

    def failing(name: str) -> Callable[..., Any]:
        def write(self: StagedTx, *args: Any, **kwargs: Any) -> Any:
            result = originals[name](self, *args, **kwargs)
            if countdown[0]:
                countdown[0] -= 1
                if not countdown[0]:
                    interrupted[0] += 1
                    raise KeyboardInterrupt(name)
            return result

        return write

    def interrupt(command: Callable[[], object]) -> None:
        for nth in range(1, 20):
            countdown[0] = nth
            try:
                command()  # a refusal (PathwayError) goes to the script as it is
            except KeyboardInterrupt:
                continue
            finally:
                countdown[0] = 0
            return
        raise AssertionError("the command never ran through")

    with Clinic.open(reference, actor="dr.a", role="physician") as clinic:
        expected = script(clinic)
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic, pytest.MonkeyPatch.context() as patch:
        for name in writes:
            patch.setattr(StagedTx, name, failing(name))
        with clinic.batch(staged=True):
            assert script(clinic, interrupt) == expected
    assert interrupted[0] >= 20  # one per write the script makes
    assert dump(db_url) == dump(reference)


def test_a_patient_enrolled_elsewhere_meanwhile_is_a_conflict_and_nothing_is_written(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("on SQLite the batch holds the write lock: the other writer waits")
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic, Clinic.open(db_url) as other:
        conflict = pytest.raises(ConcurrencyError, match="nothing of the batch was written")
        with conflict, clinic.batch(staged=True):
            clinic.enroll("A", PATHWAY, at="2026-01-02")
            clinic.enroll("B", PATHWAY, at="2026-01-02")
            other.enroll("B", PATHWAY, at="2026-01-03", role="coordinator")
        assert [s.patient for s in clinic.list()] == ["B"]
