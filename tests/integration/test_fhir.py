"""FHIR R4B export of an enrollment and import of a ServiceRequest referral."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pathway import Clinic, InvalidInput, NotFound
from pathway.interop import fhir
from pathway_cli.main import cli

BASELINE = {
    "onset_date": "2025-05-01",
    "nrs": 7,
    "ndi": 22,
    "axial_predominant": True,
    "radiculopathy": "none",
    "red_flags": [],
}
BLOCK = {
    "side": "right",
    "levels": ["C4-5", "C5-6"],
    "agent": "lidocaine",
    "guidance": "fluoroscopy",
    "sedation": "none",
    "pre_nrs": 7,
    "post_nrs": 1,
    "relief_hours": 2,
}
SAFE = {
    "anticoagulant": False,
    "anticoagulant_plan": False,
    "implanted_device": "none",
    "device_plan": False,
    "pregnant": False,
    "site_infection": False,
}
ABLATION = {"side": "right", "levels": ["C4-5", "C5-6"], "technique": "thermal", "guidance": "fluoroscopy"}
PLAN = "https://pathway.invalid/fhir/PlanDefinition/"


def journey(clinic: Clinic, patient: str = "F1", *, discharge: bool = True) -> None:
    """Worked example 1 of CLINICAL.md, through a hold, to discharge."""
    clinic.enroll(patient, "cervical-neurotomy", name="Ann Example", at="2026-01-05")
    clinic.advance(patient, "start_evaluation", at="2026-01-10")
    clinic.record(patient, "baseline", BASELINE, at="2026-01-10")
    clinic.record(
        patient,
        "conservative_care",
        {"modality": "physiotherapy", "weeks": 8, "outcome": "failed"},
        at="2026-01-10",
    )
    clinic.advance(patient, "hold", reason="patient request", at="2026-01-12")
    clinic.advance(patient, "resume", at="2026-01-20")
    clinic.advance(patient, "schedule_blocks", at="2026-01-21")
    clinic.record(patient, "block", BLOCK, at="2026-02-01")
    clinic.record(
        patient, "block", {**BLOCK, "agent": "bupivacaine", "post_nrs": 0, "relief_hours": 6}, at="2026-02-22"
    )
    clinic.advance(patient, "approve_ablation", at="2026-02-23")
    clinic.record(patient, "safety", SAFE, at="2026-03-09")
    clinic.record(patient, "ablation", ABLATION, at="2026-03-09")
    clinic.advance(patient, "perform_ablation", at="2026-03-09")
    clinic.advance(patient, "begin_follow_up", at="2026-03-30")
    wrong = clinic.record(patient, "follow_up", {"nrs": 9, "ndi": 30, "pgic": 2}, at="2026-06-09")
    clinic.correct(patient, wrong.id, reason="wrong patient", at="2026-06-10")
    clinic.record(patient, "follow_up", {"nrs": 3, "ndi": 12, "pgic": 6}, at="2026-09-09")
    if discharge:
        clinic.advance(patient, "discharge", at="2026-09-10")


def of_type(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def exported(clinic: Clinic, patient: str = "F1") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fhir.export_json(clinic, patient))
    return data


def test_export_of_a_whole_journey(clinic: Clinic) -> None:
    journey(clinic)
    bundle = exported(clinic)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert fhir.check_bundle(bundle) == []
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(u.startswith("urn:uuid:") for u in urls) and len(set(urls)) == len(urls)

    (patient,) = of_type(bundle, "Patient")
    assert patient["identifier"] == [{"value": "F1"}]  # no system known: none is invented
    assert patient["name"] == [{"text": "Ann Example"}]

    (episode,) = of_type(bundle, "EpisodeOfCare")
    assert episode["status"] == "finished"
    assert [h["status"] for h in episode["statusHistory"]] == [
        "waitlist",
        "active",
        "onhold",
        "active",
        "finished",
    ]
    assert episode["statusHistory"][0]["period"] == {
        "start": "2026-01-05T00:00:00Z",
        "end": "2026-01-10T00:00:00Z",
    }
    assert episode["statusHistory"][3]["period"]["start"] == "2026-01-20T00:00:00Z"
    assert episode["statusHistory"][3]["period"]["end"] == "2026-09-10T00:00:00Z"
    assert episode["period"]["start"] == "2026-01-05T00:00:00Z"

    (plan,) = of_type(bundle, "CarePlan")
    assert plan["instantiatesCanonical"] == [PLAN + "cervical-neurotomy|1"]
    assert plan["status"] == "completed"

    tasks = of_type(bundle, "Task")
    assert [t["businessStatus"]["text"] for t in tasks] == [
        "referred",
        "evaluation",
        "on_hold",
        "evaluation",
        "diagnostic_block",
        "ablation",
        "recovery",
        "follow_up",
        "discharged",
    ]
    assert {t["status"] for t in tasks} == {"completed"}
    assert tasks[1]["executionPeriod"] == {"start": "2026-01-10T00:00:00Z", "end": "2026-01-12T00:00:00Z"}
    assert len(plan["activity"]) == len(tasks)

    procedures = of_type(bundle, "Procedure")
    codes = [[c["code"] for c in p["code"]["coding"] if c["system"] == fhir.CPT] for p in procedures]
    # Two levels each: the first level's code, then the add-on code for the second level.
    assert codes == [["64490"], ["64491"], ["64490"], ["64491"], ["64633"], ["64634"]]
    assert {p["status"] for p in procedures} == {"completed"}
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    add_on = procedures[-1]
    assert by_url[add_on["partOf"][0]["reference"]] is procedures[-2]
    assert [b["coding"][0]["code"] for b in add_on["bodySite"]] == ["C5-6"]
    ablation = procedures[-2]
    assert ablation["performedDateTime"] == "2026-03-09T00:00:00Z"
    assert [b["coding"][0]["code"] for b in ablation["bodySite"]] == ["C4-5", "C5-6"]
    laterality = [x for x in ablation["extension"] if x["url"] == fhir.LATERALITY_EXTENSION]
    assert laterality[0]["valueCodeableConcept"]["coding"][0]["code"] == "24028007"

    observations = of_type(bundle, "Observation")
    scores = [(o["code"]["coding"][0]["code"], o["valueInteger"], o["status"]) for o in observations]
    assert scores == [
        ("72514-3", 7, "final"),
        ("ndi-total", 22, "final"),
        ("72514-3", 9, "entered-in-error"),
        ("ndi-total", 30, "entered-in-error"),
        ("pgic", 2, "entered-in-error"),
        ("72514-3", 3, "final"),
        ("ndi-total", 12, "final"),
        ("pgic", 6, "final"),
    ]
    assert observations[0]["code"]["coding"][0]["system"] == "http://loinc.org"


def test_export_of_an_open_enrollment_marks_the_current_stage_in_progress(clinic: Clinic) -> None:
    clinic.enroll("F2", "cervical-neurotomy", at="2026-01-05")
    clinic.advance("F2", "start_evaluation", at="2026-01-10")
    bundle = exported(clinic, "F2")
    assert fhir.check_bundle(bundle) == []
    (episode,) = of_type(bundle, "EpisodeOfCare")
    assert episode["status"] == "active"
    assert "end" not in episode["period"]
    assert episode["statusHistory"][-1] == {"status": "active", "period": {"start": "2026-01-10T00:00:00Z"}}
    assert [t["status"] for t in of_type(bundle, "Task")] == ["completed", "in-progress"]
    assert of_type(bundle, "CarePlan")[0]["status"] == "active"
    assert of_type(bundle, "Procedure") == [] and of_type(bundle, "Observation") == []


def test_export_is_repeatable_and_declined_is_cancelled(clinic: Clinic) -> None:
    clinic.enroll("F3", "cervical-neurotomy", at="2026-01-05")
    clinic.advance("F3", "decline", at="2026-01-06")
    first, second = exported(clinic, "F3"), exported(clinic, "F3")
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    assert of_type(first, "EpisodeOfCare")[0]["status"] == "cancelled"
    assert of_type(first, "CarePlan")[0]["status"] == "revoked"


def test_export_of_an_unknown_patient_is_not_found(clinic: Clinic) -> None:
    with pytest.raises(NotFound):
        fhir.export_json(clinic, "NOBODY")


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("referred", "waitlist"),
        ("evaluation", "active"),
        ("follow_up", "active"),
        ("on_hold", "onhold"),
        ("discharged", "finished"),
        ("declined", "cancelled"),
        ("ineligible", "cancelled"),
        ("lost_to_follow_up", "cancelled"),
        ("referred_elsewhere", "cancelled"),
    ],
)
def test_episode_status_mapping(clinic: Clinic, state: str, status: str) -> None:
    assert fhir.episode_status(clinic.catalog.get("cervical-neurotomy"), state) == status


# --- the checker ---------------------------------------------------------------------------


def test_check_bundle_catches_a_broken_reference_and_bad_statuses(clinic: Clinic) -> None:
    journey(clinic, discharge=False)
    good = exported(clinic)
    assert fhir.check_bundle(good) == []
    assert fhir.check_bundle(fhir.validate_bundle(good)) == []  # the model too

    broken = copy.deepcopy(good)
    of_type(broken, "Task")[0]["for"]["reference"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    problems = fhir.check_bundle(broken)
    assert len(problems) == 1
    assert "entry[" in problems[0] and "(Task).for" in problems[0] and "does not resolve" in problems[0]

    bad = copy.deepcopy(good)
    episode = of_type(bad, "EpisodeOfCare")[0]
    episode["status"] = "closed"
    episode["statusHistory"][0]["status"] = "referred"
    of_type(bad, "Procedure")[0]["status"] = "done"
    of_type(bad, "Observation")[0]["status"] = "ok"
    of_type(bad, "Task")[0]["status"] = "finished"
    problems = fhir.check_bundle(bad)
    assert len(problems) == 5
    assert any("statusHistory[0].status: 'referred'" in p for p in problems)
    assert any("(Procedure).status: 'done'" in p for p in problems)

    dropped = copy.deepcopy(good)
    dropped["entry"] = [e for e in dropped["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert len(fhir.check_bundle(dropped)) >= len(dropped["entry"])  # every resource names the patient

    with pytest.raises(fhir.FhirError, match="does not resolve"):
        fhir.validate_bundle(broken)


# --- import --------------------------------------------------------------------------------


def service_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "instantiatesCanonical": [PLAN + "lumbar-neurotomy|1"],
        "subject": {"identifier": {"system": fhir.PATIENT_SYSTEM, "value": "R1"}},
        "authoredOn": "2026-01-06T09:30:00+01:00",
    }
    request.update(changes)
    return request


def referral_bundle(request: dict[str, Any] | None = None) -> dict[str, Any]:
    patient_url = "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a11"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-9"}],
                    "name": [{"given": ["Bea"], "family": "Example"}],
                },
            },
            {
                "fullUrl": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a12",
                "resource": request or service_request(subject={"reference": patient_url}),
            },
        ],
    }


def test_import_a_service_request(clinic: Clinic) -> None:
    status = fhir.import_referral(clinic, service_request())
    assert (status.patient, status.pathway, status.state) == ("R1", "lumbar-neurotomy", "referred")
    assert status.since.isoformat() == "2026-01-06T08:30:00+00:00"
    assert [e.trigger for e in clinic.history("R1")] == ["enroll"]


def test_import_a_bundle_with_its_patient_and_the_default_pathway(clinic: Clinic) -> None:
    request = service_request(subject={"reference": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a11"})
    del request["instantiatesCanonical"]
    status = fhir.import_referral(clinic, referral_bundle(request))
    assert (status.patient, status.pathway, status.name) == ("MRN-9", "cervical-neurotomy", "Bea Example")


def test_an_exported_referral_round_trips(clinic: Clinic) -> None:
    fhir.import_referral(clinic, service_request(instantiatesCanonical=[PLAN + "cervical-neurotomy"]))
    bundle = exported(clinic, "R1")
    (episode,) = of_type(bundle, "EpisodeOfCare")
    assert episode["period"]["start"] == "2026-01-06T08:30:00Z"
    assert episode["status"] == "waitlist"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"resourceType": "Patient"}, "expected a FHIR ServiceRequest or Bundle"),
        ({"status": "active"}, "expected a FHIR ServiceRequest or Bundle"),
        (service_request(status="revoked"), "ServiceRequest.status"),
        (service_request(status="nonsense"), "ServiceRequest.status"),
        (service_request(intent=None), "invalid FHIR ServiceRequest"),
        (service_request(authoredOn="yesterday"), "invalid FHIR ServiceRequest"),
        (
            service_request(authoredOn="2099-01-01"),
            "ServiceRequest.authoredOn: 2099-01-01T00:00:00Z is in the future",
        ),
        (service_request(intent="proposal"), "ServiceRequest.intent: 'proposal' is not a referral"),
        (service_request(intent="plan"), "ServiceRequest.intent: 'plan' is not a referral"),
        (
            service_request(instantiatesCanonical=[PLAN + "lumbar-neurotomy|99"]),
            r"lumbar-neurotomy has no version '99' here \(versions: 1\)",
        ),
        (service_request(subject={"display": "someone"}), "no identifier"),
        (service_request(subject={"reference": "Patient/x"}), "is not in the input"),
        (service_request(instantiatesCanonical=["http://elsewhere/PlanDefinition/x"]), "is a pathway"),
        (referral_bundle(service_request(subject={"reference": "urn:uuid:nope"})), "is not in the input"),
        ({"resourceType": "Bundle", "type": "collection"}, "expected one ServiceRequest, found 0"),
        ({"resourceType": "Bundle", "type": "collection", "entry": "x"}, "invalid FHIR Bundle"),
    ],
)
def test_invalid_referrals_are_one_clear_error(clinic: Clinic, data: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        fhir.import_referral(clinic, data)
    assert clinic.list() == []


def test_an_unknown_pathway_is_not_found(clinic: Clinic) -> None:
    with pytest.raises(NotFound, match="unknown pathway"):
        fhir.import_referral(clinic, service_request(instantiatesCanonical=[PLAN + "hip-replacement"]))


# --- CLI -----------------------------------------------------------------------------------


def run(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", db_url, "--role", "physician", *args])


def test_cli_import_then_export(db_url: str, tmp_path: Path) -> None:
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(referral_bundle()))
    result = run(db_url, "import", "fhir", str(referral))
    assert result.exit_code == 0, result.output
    assert "enrolled MRN-9 in lumbar-neurotomy" in result.output

    # The same referral again changes nothing (as a rerun of `import referrals`)...
    again = run(db_url, "import", "fhir", str(referral))
    assert again.exit_code == 0 and "already enrolled in lumbar-neurotomy from this referral" in again.output
    assert "nothing changed" in again.output
    # ... while another referral for an open enrollment is refused.
    other = referral_bundle()
    next(e for e in other["entry"] if e["resource"]["resourceType"] == "ServiceRequest")["resource"][
        "authoredOn"
    ] = "2026-02-01"
    referral.write_text(json.dumps(other))
    refused = run(db_url, "import", "fhir", str(referral))
    assert refused.exit_code == 1 and "already has an open enrollment" in refused.output
    # Once the episode is closed, the first referral sent yet again is still not a new one.
    assert run(db_url, "advance", "MRN-9", "decline").exit_code == 0
    referral.write_text(json.dumps(referral_bundle()))
    again = run(db_url, "import", "fhir", str(referral), "--json")
    assert again.exit_code == 0 and json.loads(again.output)["enrolled"] is False
    assert json.loads(again.output)["state"] == "declined"

    result = run(db_url, "export", "fhir", "MRN-9")
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    assert fhir.check_bundle(bundle) == []
    assert of_type(bundle, "Patient")[0]["identifier"][0]["value"] == "MRN-9"

    out = tmp_path / "out.json"
    result = run(db_url, "export", "fhir", "MRN-9", "--pathway", "lumbar-neurotomy", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {**bundle, "timestamp": json.loads(out.read_text())["timestamp"]}
    assert not Path(str(out) + ".partial").exists()


def test_cli_import_json_output(db_url: str, tmp_path: Path) -> None:
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(service_request()))
    result = run(db_url, "import", "fhir", str(referral), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pathway"] == "lumbar-neurotomy"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"resourceType": "Observation"}', "expected a FHIR ServiceRequest or Bundle"),
        (json.dumps(service_request(intent=None)), "invalid FHIR ServiceRequest"),
        (json.dumps(service_request(subject={})), "no identifier"),
    ],
)
def test_cli_bad_files_exit_1_without_traceback(
    db_url: str, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run(db_url, "import", "fhir", str(path))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") <= 2


def test_cli_missing_file_and_unknown_patient(db_url: str, tmp_path: Path) -> None:
    assert run(db_url, "db", "upgrade").exit_code == 0
    missing = run(db_url, "import", "fhir", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "cannot read" in missing.output
    unknown = run(db_url, "export", "fhir", "NOBODY")
    assert unknown.exit_code == 4 and "no patient" in unknown.output


def test_a_lumbar_disability_score_is_not_called_the_neck_disability_index(clinic: Clinic) -> None:
    clinic.enroll("L1", "lumbar-neurotomy", at="2026-01-05")
    clinic.advance("L1", "start_evaluation", at="2026-01-10")
    clinic.record("L1", "baseline", BASELINE, at="2026-01-10")
    clinic.enroll("C1", "cervical-neurotomy", at="2026-01-05")
    clinic.advance("C1", "start_evaluation", at="2026-01-10")
    clinic.record("C1", "baseline", BASELINE, at="2026-01-10")

    def disability(patient: str) -> list[dict[str, Any]]:
        bundle = json.loads(fhir.export_json(clinic, patient))
        return [
            coding
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
            for coding in e["resource"]["code"]["coding"]
            if coding["code"] != "72514-3"
        ]

    (lumbar,) = disability("L1")
    assert lumbar["code"] == "disability-index-total" and "Neck" not in lumbar["display"]
    (cervical,) = disability("C1")
    assert cervical["code"] == "ndi-total" and cervical["display"].startswith("Neck Disability Index")
