"""FHIR identity (issue 14, item 12): what a referral is named by survives import and export.

The patient's identifier system and the ServiceRequest's identifier are kept; export
gives them back (a clinic-wide default system for patients who came without one), links
the episode to its referral, and can be a transaction of conditional creates. The same
referral imported twice, with or without authoredOn, enrolls once; a different order
identifier is a different referral.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pathway import AlreadyEnrolled, Clinic, GuardRefused
from pathway.interop import fhir
from pathway_cli.main import cli
from tests.integration.test_fhir import ABLATION, BASELINE, BLOCK, PLAN, SAFE, of_type

MRN = "urn:oid:1.2.36.146.595.217.0.1"
ORDERS = "https://clinic.example.org/orders"


def referral(order: str | None = "ORD-1", *, authored: str | None = None, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "instantiatesCanonical": [PLAN + "cervical-neurotomy"],
        "subject": {"identifier": {"system": MRN, "value": "MRN7"}},
    }
    if order is not None:
        request["identifier"] = [{"system": ORDERS, "value": order}]
    if authored is not None:
        request["authoredOn"] = authored
    request.update(changes)
    return request


def exported(clinic: Clinic, patient: str = "MRN7", **options: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fhir.export_json(clinic, patient, **options))
    return data


def test_the_identifier_systems_are_kept_and_exported(clinic: Clinic) -> None:
    status, enrolled = fhir.enroll_referral(clinic, referral(authored="2026-01-06"))
    assert enrolled and status.identifier_system == MRN
    assert status.referral == (ORDERS, "ORD-1")
    bundle = exported(clinic)
    (patient,) = of_type(bundle, "Patient")
    assert patient["identifier"] == [{"system": MRN, "value": "MRN7"}]
    (episode,) = of_type(bundle, "EpisodeOfCare")
    assert episode["referralRequest"] == [
        {"type": "ServiceRequest", "identifier": {"system": ORDERS, "value": "ORD-1"}}
    ]
    assert "pathway.invalid/fhir/patient-id" not in json.dumps(patient)


def test_the_clinic_default_system_names_patients_who_came_without_one(clinic: Clinic) -> None:
    clinic.enroll("P1", "cervical-neurotomy", at="2026-01-05")
    assert of_type(exported(clinic, "P1"), "Patient")[0]["identifier"] == [{"value": "P1"}]
    clinic.set_setting("patient-system", "https://clinic.example.org/mrn")
    assert of_type(exported(clinic, "P1"), "Patient")[0]["identifier"] == [
        {"system": "https://clinic.example.org/mrn", "value": "P1"}
    ]
    # ... and import looks for that system first among several identifiers.
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a11",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {"system": "urn:oid:9.9", "value": "OTHER"},
                        {"system": "https://clinic.example.org/mrn", "value": "P2"},
                    ],
                },
            },
            {
                "fullUrl": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a12",
                "resource": referral(subject={"reference": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a11"}),
            },
        ],
    }
    status, _ = fhir.enroll_referral(clinic, bundle)
    assert (status.patient, status.identifier_system) == ("P2", "https://clinic.example.org/mrn")


@pytest.mark.parametrize("order", [None, "ORD-1"], ids=["no identifier", "identifier"])
def test_the_same_referral_without_authored_on_twice_changes_nothing(
    clinic: Clinic, order: str | None
) -> None:
    first, enrolled = fhir.enroll_referral(clinic, referral(order))
    again, enrolled_again = fhir.enroll_referral(clinic, copy.deepcopy(referral(order)))
    assert (enrolled, enrolled_again) == (True, False)
    assert again.enrollment_id == first.enrollment_id
    assert len(clinic.episodes("MRN7")) == 1 and len(clinic.outbox()) == 1


def test_a_different_order_identifier_is_a_different_referral(clinic: Clinic) -> None:
    fhir.enroll_referral(clinic, referral("ORD-1", authored="2026-01-06"))
    # Same time and patient, another order: not the same referral, so not a no-op; the
    # patient's episode is still open, and episodes do not overlap.
    with pytest.raises(AlreadyEnrolled, match="may not overlap"):
        fhir.enroll_referral(clinic, referral("ORD-2", authored="2026-01-06"))
    clinic.advance("MRN7", "decline", reason="patient choice", at="2026-01-07", role="coordinator")
    status, enrolled = fhir.enroll_referral(clinic, referral("ORD-2", authored="2026-02-01"))
    assert enrolled and status.referral == (ORDERS, "ORD-2")
    assert [e.referral for e in clinic.episodes("MRN7")] == [(ORDERS, "ORD-1"), (ORDERS, "ORD-2")]
    # The first referral sent again is still the first episode: nothing changes.
    seen, enrolled = fhir.enroll_referral(clinic, referral("ORD-1", authored="2026-01-06"))
    assert not enrolled and seen.referral == (ORDERS, "ORD-1")


def test_a_known_patient_under_another_system_is_refused(clinic: Clinic) -> None:
    fhir.enroll_referral(clinic, referral(authored="2026-01-06"))
    clinic.advance("MRN7", "decline", reason="patient choice", at="2026-01-07", role="coordinator")
    other = referral(
        "ORD-9", authored="2026-02-01", subject={"identifier": {"system": "urn:oid:4.4", "value": "MRN7"}}
    )
    with pytest.raises(Exception, match="known with identifier system"):
        fhir.enroll_referral(clinic, other)
    assert len(clinic.episodes("MRN7")) == 1


def test_an_overlong_or_controlled_referral_identifier_is_refused(clinic: Clinic) -> None:
    for value in ("x" * 256, "ORD\x85"):
        with pytest.raises(Exception, match=r"ServiceRequest\.identifier"):
            fhir.enroll_referral(clinic, referral(value))
    assert clinic.list() == []


def test_two_imports_of_one_referral_at_once_enroll_once(db_url: str) -> None:
    """The second import waits for the first's transaction (PostgreSQL: on the patient's
    unique identifier; SQLite: on the write lock) and then finds the referral done."""
    with (
        Clinic.open(db_url, actor="a", role="coordinator") as first,
        Clinic.open(db_url, actor="b") as second,
    ):
        results: list[Any] = []
        release = threading.Event()

        def other() -> None:
            try:
                results.append(fhir.enroll_referral(second, referral(authored="2026-01-06"))[1])
            except Exception as exc:  # anything raised is the failure this test looks for
                results.append(exc)

        with first.batch():
            assert fhir.enroll_referral(first, referral(authored="2026-01-06"))[1]
            thread = threading.Thread(target=other)
            thread.start()
            _wait_until_blocked(db_url, thread)
            release.set()
        thread.join(timeout=60)
        assert results == [False]
        assert len(first.episodes("MRN7")) == 1


def _wait_until_blocked(db_url: str, thread: threading.Thread) -> None:
    """Until the other import waits on this one (PostgreSQL: a backend waiting on a lock;
    SQLite cannot be asked, so a moment)."""
    if not db_url.startswith("postgresql"):
        time.sleep(0.5)
        return
    from sqlalchemy import create_engine, text

    from pathway.store.database import normalize_url

    engine = create_engine(normalize_url(db_url))
    try:
        for _ in range(200):
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                ).scalar()
            if waiting or not thread.is_alive():
                return
            time.sleep(0.05)
    finally:
        engine.dispose()


def _journey_with_a_refused_ablation(clinic: Clinic) -> None:
    fhir.enroll_referral(clinic, referral(authored="2026-01-05"))
    p = "MRN7"
    clinic.advance(p, "start_evaluation", at="2026-01-10")
    clinic.record(p, "baseline", BASELINE, at="2026-01-10")
    clinic.record(
        p,
        "conservative_care",
        {"modality": "physiotherapy", "weeks": 8, "outcome": "failed"},
        at="2026-01-10",
    )
    clinic.advance(p, "schedule_blocks", at="2026-01-21")
    clinic.record(p, "block", BLOCK, at="2026-02-01")
    clinic.record(
        p, "block", {**BLOCK, "agent": "bupivacaine", "post_nrs": 0, "relief_hours": 6}, at="2026-02-22"
    )
    clinic.advance(p, "approve_ablation", at="2026-02-23")
    clinic.record(p, "safety", {**SAFE, "anticoagulant": True}, at="2026-03-02")
    clinic.record(p, "ablation", ABLATION, at="2026-03-02")
    with pytest.raises(GuardRefused):
        clinic.advance(p, "perform_ablation", at="2026-03-02")
    clinic.record(p, "safety", SAFE, at="2026-03-09")
    clinic.record(p, "ablation", ABLATION, at="2026-03-09")
    clinic.advance(p, "perform_ablation", at="2026-03-09")


def test_a_refused_attempt_is_not_a_completed_procedure(clinic: Clinic) -> None:
    _journey_with_a_refused_ablation(clinic)
    ablations = [
        r
        for r in of_type(exported(clinic), "Procedure")
        if any(c["code"] == "ablation" for c in r["code"]["coding"])
    ]
    by_day = {(r["performedDateTime"][:10], r["status"], len(r.get("partOf", ()))) for r in ablations}
    # The refused attempt: not-done, and no add-on for its second level; the performed one:
    # completed, with the add-on (64634) for its second level.
    assert by_day == {
        ("2026-03-02", "not-done", 0),
        ("2026-03-09", "completed", 0),
        ("2026-03-09", "completed", 1),
    }
    codes = {c["code"] for r in ablations if r["status"] == "completed" for c in r["code"]["coding"]}
    assert {"64633", "64634"} <= codes


def test_export_as_a_transaction_of_conditional_creates(clinic: Clinic, tmp_path: Path) -> None:
    _journey_with_a_refused_ablation(clinic)
    bundle = exported(clinic, type="transaction")
    assert bundle["type"] == "transaction" and fhir.check_bundle(bundle) == []
    fhir.validate_bundle(bundle)  # fhir.resources R4B accepts it
    requests = [e["request"] for e in bundle["entry"]]
    assert all(r["method"] == "POST" for r in requests)
    assert [r["url"] for r in requests] == [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert requests[0]["ifNoneExist"] == f"identifier={MRN}|MRN7"
    assert all(r["ifNoneExist"].startswith("identifier=") for r in requests)
    assert len({r["url"] + r["ifNoneExist"] for r in requests}) == len(requests)  # each names one resource
    # Every reference is to an entry's urn:uuid fullUrl, which a server resolves on create.
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in urls)

    db = clinic.store.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "tx.json"
    result = CliRunner().invoke(
        cli, ["--db", db, "export", "fhir", "MRN7", "--type", "transaction", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["type"] == "transaction"
    wrong = CliRunner().invoke(cli, ["--db", db, "export", "fhir", "MRN7", "--type", "batch"])
    assert wrong.exit_code == 2 and "transaction" in wrong.output
