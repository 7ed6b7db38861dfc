"""The store's contract, run against a SQLite file and against PostgreSQL.

Every test here takes the `clinic` fixture, which is parametrized over both
backends (see tests/conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pathway import (
    AlreadyEnrolled,
    AmbiguousEnrollment,
    Clinic,
    ConcurrencyError,
    EnrollmentClosed,
    GuardRefused,
    InvalidInput,
    InvalidTime,
    NotFound,
    RoleRefused,
    StoreError,
)
from pathway.service.results import audit_entries
from pathway.store.tables import events, observations, outbox

PATHWAY = "cervical-neurotomy"
BASELINE = {
    "onset_date": "2025-05-01",
    "nrs": 7,
    "ndi": 22,
    "axial_predominant": True,
    "radiculopathy": "none",
    "red_flags": [],
}


def count(clinic: Clinic, table: object) -> int:
    with clinic.store.read() as tx:
        return int(tx.conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_enroll_starts_at_the_initial_state_with_an_event_and_an_outbox_message(
    clinic: Clinic,
) -> None:
    status = clinic.enroll("MRN1", PATHWAY, at="2026-01-05", name="Jo Bloggs")
    assert (status.state, status.version, status.profile) == ("referred", 1, "medicare")
    history = clinic.history("MRN1")
    assert [(e.seq, e.trigger, e.from_state, e.to_state) for e in history] == [
        (1, "enroll", None, "referred")
    ]
    assert count(clinic, "outbox") == 1


def test_one_open_enrollment_per_pathway(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    with pytest.raises(AlreadyEnrolled):
        clinic.enroll("MRN1", PATHWAY, at="2026-01-06")


def test_a_new_episode_may_start_after_a_terminal_state(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "decline", at="2026-01-06")
    with pytest.raises(EnrollmentClosed):
        clinic.advance("MRN1", "start_evaluation", at="2026-01-07")
    status = clinic.enroll("MRN1", PATHWAY, at="2026-02-01")
    assert status.state == "referred"
    assert len({s.since for s in clinic.list(pathway=PATHWAY)}) == 2
    assert clinic.status("MRN1").open


def test_advance_writes_state_event_and_outbox_together(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    result = clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    assert (result.from_state, result.to_state, result.seq) == ("referred", "evaluation", 2)
    status = clinic.status("MRN1", at="2026-01-20")
    assert status.state == "evaluation" and status.days_in_state == 8
    assert count(clinic, "events") == 2
    assert count(clinic, "outbox") == 2


def test_a_refused_trigger_changes_nothing(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    before = (count(clinic, "events"), count(clinic, "outbox"), clinic.status("MRN1"))
    with pytest.raises(GuardRefused) as caught:
        clinic.advance("MRN1", "schedule_blocks", at="2026-01-20")
    assert any("baseline" in f.message for v in caught.value.verdicts for f in v.failures)
    after = (count(clinic, "events"), count(clinic, "outbox"), clinic.status("MRN1"))
    assert before[:2] == after[:2]
    assert before[2].state == after[2].state == "evaluation"
    assert before[2].enrollment_version == after[2].enrollment_version


def test_role_refusal_is_not_recorded(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    with pytest.raises(RoleRefused, match="physician"):
        clinic.advance("MRN1", "order_imaging", at="2026-01-13", role="coordinator")
    with pytest.raises(RoleRefused, match="physician"):
        clinic.record("MRN1", "baseline", BASELINE, role="coordinator")
    assert count(clinic, "events") == 2
    assert count(clinic, "observations") == 0


def test_hold_and_resume_return_to_the_held_from_state(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    with pytest.raises(GuardRefused, match="reason"):
        clinic.advance("MRN1", "hold", at="2026-01-13")
    clinic.advance("MRN1", "hold", at="2026-01-13", reason="patient abroad")
    status = clinic.status("MRN1")
    assert (status.state, status.held_from) == ("on_hold", "evaluation")
    clinic.advance("MRN1", "resume", at="2026-02-01")
    status = clinic.status("MRN1")
    assert (status.state, status.held_from) == ("evaluation", None)


def test_an_event_may_not_take_effect_before_the_previous_one(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    with pytest.raises(InvalidTime, match="before"):
        clinic.advance("MRN1", "start_evaluation", at="2026-01-04")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-05")  # the same moment is fine


def test_times_are_stored_in_utc(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05T09:00:00+02:00")
    (event,) = clinic.history("MRN1")
    assert event.effective_at.isoformat() == "2026-01-05T07:00:00+00:00"
    assert event.recorded_at.tzinfo is not None


def test_invalid_observation_is_rejected_and_nothing_stored(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    with pytest.raises(InvalidInput) as caught:
        clinic.record("MRN1", "baseline", {**BASELINE, "nrs": "2-8", "ndi": 99})
    assert sorted(p.split(":")[0] for p in caught.value.problems) == ["ndi", "nrs"]
    assert count(clinic, "observations") == 0
    assert count(clinic, "outbox") == 1


def test_correct_marks_entered_in_error_and_keeps_the_row(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    obs = clinic.record("MRN1", "baseline", BASELINE, at="2026-01-12")
    corrected = clinic.correct("MRN1", obs.id, reason="wrong patient")
    assert corrected.entered_in_error and corrected.error_reason == "wrong patient"
    (stored,) = clinic.observations("MRN1")
    assert stored.entered_in_error and stored.error_actor == "dr.test"
    assert stored.data["nrs"] == 7
    with pytest.raises(InvalidInput, match="already"):
        clinic.correct("MRN1", obs.id, reason="again")
    with pytest.raises(NotFound):
        clinic.correct("MRN1", 9999, reason="nope")


def test_a_correction_keeps_its_effective_time_entered_time_and_role(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    obs = clinic.record("MRN1", "baseline", BASELINE, at="2026-01-12")
    with pytest.raises(InvalidTime, match="a correction cannot precede what it corrects"):
        clinic.correct("MRN1", obs.id, reason="wrong patient", at="2026-01-11")
    assert not clinic.observations("MRN1")[0].entered_in_error
    before = datetime.now(UTC)
    clinic.correct("MRN1", obs.id, reason="wrong patient", at="2026-01-20", role="physician")
    (stored,) = clinic.observations("MRN1")
    assert stored.error_at == datetime(2026, 1, 20, tzinfo=UTC)
    assert stored.error_role == "physician"
    assert stored.error_recorded_at is not None and stored.error_recorded_at >= before - timedelta(seconds=1)
    audit = audit_entries(clinic.history("MRN1"), clinic.observations("MRN1"))
    (correction,) = [e for e in audit if e["type"] == "correction"]
    assert correction["at"] == "2026-01-20T00:00:00Z" and correction["role"] == "physician"
    assert correction["recorded_at"] != correction["at"]


def test_corrected_observations_no_longer_count_for_guards(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    obs = clinic.record("MRN1", "baseline", BASELINE, at="2026-01-12")
    clinic.record(
        "MRN1",
        "conservative_care",
        {"modality": "physiotherapy", "weeks": 8, "outcome": "failed"},
        at="2026-01-12",
    )
    (check,) = clinic.check("MRN1", "schedule_blocks", at="2026-01-20")
    assert check.allowed
    clinic.correct("MRN1", obs.id, reason="entered twice")
    (check,) = clinic.check("MRN1", "schedule_blocks", at="2026-01-20")
    assert not check.allowed


def test_the_database_refuses_tampering_with_events_and_observations(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.record("MRN1", "baseline", BASELINE, at="2026-01-12")
    for statement in (
        events.update().values(trigger="forged"),
        events.delete(),
        observations.update().values(data={"nrs": 0}),
        observations.delete(),
    ):
        with pytest.raises((DBAPIError, StoreError)), clinic.store.write() as tx:
            tx.conn.execute(statement)
    assert clinic.history("MRN1")[0].trigger == "enroll"
    assert clinic.observations("MRN1")[0].data["nrs"] == 7


def test_a_stale_writer_gets_a_conflict_and_nothing_is_lost(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    seen = clinic.status("MRN1").enrollment_version
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    with pytest.raises(ConcurrencyError):
        clinic.advance("MRN1", "hold", at="2026-01-13", reason="x", expected_version=seen)
    assert [e.trigger for e in clinic.history("MRN1")] == ["enroll", "start_evaluation"]


def test_two_writers_on_one_enrollment_one_wins_the_other_conflicts(db_url: str) -> None:
    """Two clinics read the same version; the second write is refused, not lost."""
    with (
        Clinic.open(db_url, actor="a", role="physician") as one,
        Clinic.open(db_url, actor="b", role="physician") as two,
    ):
        one.enroll("MRN1", PATHWAY, at="2026-01-05")
        enrollment = one.status("MRN1")
        with one.store.write() as tx1:
            stale = tx1.enrollments_of(tx1.find_patient("MRN1").id)[0]
        two.advance("MRN1", "start_evaluation", at="2026-01-12")
        with pytest.raises(ConcurrencyError), one.store.write() as tx:
            tx.touch(stale, stale.chain_head or "")
        assert one.status("MRN1").enrollment_version == enrollment.enrollment_version + 1


def test_several_open_enrollments_need_a_pathway_to_choose(clinic: Clinic, tmp_path) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    # a second pathway, loaded from a clinic's own directory
    import shutil
    from pathlib import Path

    from pathway.definitions.catalog import Catalog

    src = Path(__file__).resolve().parents[2] / "workflows" / "cervical-neurotomy.yaml"
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(src, local / "other.yaml")
    (local / "other.yaml").write_text(
        (local / "other.yaml")
        .read_text()
        .replace("id: cervical-neurotomy", "id: other-pathway")
        .replace("default: true", "default: false")
        .replace("  name: cervical", "  name: thoracic")  # another region: episodes may overlap
    )
    clinic.catalog = Catalog.discover([local])
    clinic.enroll("MRN1", "other-pathway", at="2026-01-05")
    with pytest.raises(AmbiguousEnrollment, match="--pathway"):
        clinic.advance("MRN1", "start_evaluation", at="2026-01-06")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-06", pathway="other-pathway")
    assert clinic.status("MRN1", pathway=PATHWAY).state == "referred"
    assert clinic.status("MRN1", pathway="other-pathway").state == "evaluation"


def test_unknown_patient_is_not_found(clinic: Clinic) -> None:
    with pytest.raises(NotFound, match="enroll them first"):
        clinic.status("NOBODY")


def test_list_filters_by_pathway_and_state(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.enroll("MRN2", PATHWAY, at="2026-01-05")
    clinic.advance("MRN2", "start_evaluation", at="2026-01-06")
    assert [s.patient for s in clinic.list(state="evaluation")] == ["MRN2"]
    assert {s.patient for s in clinic.list(pathway=PATHWAY)} == {"MRN1", "MRN2"}
    with pytest.raises(InvalidInput, match="unknown state"):
        clinic.list(state="evalution")


def test_outbox_messages_name_the_change(clinic: Clinic) -> None:
    clinic.enroll("MRN1", PATHWAY, at="2026-01-05")
    clinic.advance("MRN1", "start_evaluation", at="2026-01-12")
    with clinic.store.read() as tx:
        rows = tx.conn.execute(outbox.select().order_by(outbox.c.id)).all()
    last = rows[-1]._mapping["payload"]
    assert last["type"] == "enrollment.transitioned"
    assert (last["patient"], last["trigger"], last["from"], last["to"]) == (
        "MRN1",
        "start_evaluation",
        "referred",
        "evaluation",
    )
    assert last["effective_at"].startswith("2026-01-12")
