"""The service's FHIR face, as an interface engine uses it: the capability statement, a
referral POSTed (conditional on If-None-Exist), the patient found by identifier, the
episode read, $everything; errors as OperationOutcomes. Resources validated with
fhir.resources (R4B)."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.operationoutcome import OperationOutcome

from pathway.interop.fhir import PLAN_DEFINITION_BASE
from pathway.interop.fhir.rest import identifier_of, patient_id
from tests.service.conftest import Server

MRN = "urn:oid:2.16.840.1.113883.19.5"
ORDERS = "https://hospital.example/orders"
FHIR_JSON = "application/fhir+json"


def referral(patient: str, order: str) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "instantiatesCanonical": [f"{PLAN_DEFINITION_BASE}/cervical-neurotomy"],
        "subject": {"identifier": {"system": MRN, "value": patient}},
        "identifier": [{"system": ORDERS, "value": order}],
        "authoredOn": "2026-10-01",
    }


def test_metadata_is_a_capability_statement_without_credentials(server: Server) -> None:
    with server.client(user=None) as anonymous:
        r = anonymous.get("/fhir/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(r.json())
    assert statement.fhirVersion == "4.3.0"
    types = {res.type for res in statement.rest[0].resource}
    assert {"Patient", "EpisodeOfCare", "ServiceRequest"} <= types


def test_a_referral_posted_twice_enrolls_once_and_is_found(server: Server) -> None:
    with server.client("cora") as cora:
        headers = {"If-None-Exist": f"identifier={ORDERS}|ORD-F1", "content-type": FHIR_JSON}
        first = cora.post("/fhir/ServiceRequest", json=referral("MRN-F1", "ORD-F1"), headers=headers)
        assert first.status_code == 201, first.text
        episode = EpisodeOfCare.model_validate(first.json())
        assert first.headers["location"] == f"/fhir/EpisodeOfCare/{episode.id}"
        again = cora.post("/fhir/ServiceRequest", json=referral("MRN-F1", "ORD-F1"), headers=headers)
        assert again.status_code == 200 and again.json()["id"] == episode.id
        # Without the header the same referral is still recognised (import fhir's rule).
        plain = cora.post("/fhir/ServiceRequest", json=referral("MRN-F1", "ORD-F1"))
        assert plain.status_code == 200 and plain.json()["id"] == episode.id
        history = cora.get("/v1/patients/MRN-F1/history").json()
        assert [(e["trigger"], e["actor"]) for e in history] == [("enroll", "cora")]

        found = cora.get("/fhir/Patient", params={"identifier": f"{MRN}|MRN-F1"})
        bundle = Bundle.model_validate(found.json())
        assert bundle.type == "searchset" and bundle.total == 1
        patient = found.json()["entry"][0]["resource"]
        assert patient["identifier"] == [{"system": MRN, "value": "MRN-F1"}]
        other_system = cora.get("/fhir/Patient", params={"identifier": "https://other.example|MRN-F1"})
        assert other_system.json()["total"] == 0
        assert cora.get("/fhir/Patient", params={"identifier": "NOBODY"}).json()["total"] == 0

        read = cora.get(f"/fhir/EpisodeOfCare/{episode.id}")
        assert read.status_code == 200
        resource = EpisodeOfCare.model_validate(read.json())
        assert resource.patient.reference == f"Patient/{patient['id']}"
        assert resource.status in ("waitlist", "active", "planned")

        everything = cora.get(f"/fhir/Patient/{patient['id']}/$everything")
        assert everything.status_code == 200
        full = Bundle.model_validate(everything.json())
        assert {e.resource.get_resource_type() for e in full.entry} >= {
            "Patient",
            "EpisodeOfCare",
            "CarePlan",
        }
    with server.clinic() as clinic:
        whats = [a["what"] for a in clinic.identities.accesses("MRN-F1")]
    assert {"fhir Patient search", "fhir EpisodeOfCare", "fhir Patient/$everything"} <= set(whats)


def test_a_referral_with_an_idempotency_key_is_done_once(server: Server) -> None:
    with server.client("cora") as cora:
        key = {"Idempotency-Key": "referral-F3", "content-type": FHIR_JSON}
        first = cora.post("/fhir/ServiceRequest", json=referral("MRN-F3", "ORD-F3"), headers=key)
        assert first.status_code == 201, first.text
        again = cora.post("/fhir/ServiceRequest", json=referral("MRN-F3", "ORD-F3"), headers=key)
        # The first response again (201, not the 200 of a known referral), marked a replay.
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
        assert again.headers["content-type"].startswith(FHIR_JSON)
        EpisodeOfCare.model_validate(again.json())
        # The same key for another referral is refused, as an OperationOutcome, and does nothing.
        other = cora.post("/fhir/ServiceRequest", json=referral("MRN-F4", "ORD-F4"), headers=key)
        assert other.status_code == 422 and other.headers["content-type"].startswith(FHIR_JSON)
        assert "Idempotency-Key" in OperationOutcome.model_validate(other.json()).issue[0].diagnostics
        assert cora.get("/v1/patients/MRN-F4").status_code == 404
        # The precondition header is part of the request: with it, this is another request.
        conditional = {**key, "If-None-Exist": f"identifier={ORDERS}|ORD-F3"}
        changed = cora.post("/fhir/ServiceRequest", json=referral("MRN-F3", "ORD-F3"), headers=conditional)
        assert changed.status_code == 422
        # A refusal is a response too: its retry gets the same OperationOutcome.
        draft = {**referral("MRN-F5", "ORD-F5"), "status": "draft"}
        refused = [
            cora.post("/fhir/ServiceRequest", json=draft, headers={"Idempotency-Key": "draft-F5"})
            for _ in range(2)
        ]
        assert [r.status_code for r in refused] == [422, 422]
        assert refused[1].headers["idempotent-replayed"] == "true"
        assert refused[1].json() == refused[0].json()
        assert refused[1].headers["content-type"].startswith(FHIR_JSON)
        bad_key = cora.post(
            "/fhir/ServiceRequest", json=referral("MRN-F5", "ORD-F5"), headers={"Idempotency-Key": "x" * 256}
        )
        assert bad_key.status_code == 400 and bad_key.headers["content-type"].startswith(FHIR_JSON)
        OperationOutcome.model_validate(bad_key.json())
        assert [e["trigger"] for e in cora.get("/v1/patients/MRN-F3/history").json()] == ["enroll"]
        assert cora.get("/v1/patients/MRN-F5").status_code == 404


def test_a_method_an_operation_does_not_have_is_405_with_allow(server: Server) -> None:
    with server.client("cora") as cora:
        for path, allowed in (("/fhir/metadata", "GET"), ("/fhir/ServiceRequest", "POST")):
            refused = cora.request("TRACE", path)
            assert refused.status_code == 405 and refused.headers["allow"] == allowed, refused.headers
            assert refused.headers["content-type"].startswith(FHIR_JSON)
            OperationOutcome.model_validate(refused.json())
        refused = cora.delete("/v1/worklist")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET"
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_fhir_errors_are_operation_outcomes(server: Server) -> None:
    with server.client(user=None) as anonymous:
        refused = anonymous.get("/fhir/Patient", params={"identifier": "X"})
    assert refused.status_code == 401 and refused.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate(refused.json())
    with server.client("cora") as cora:
        missing = cora.get("/fhir/EpisodeOfCare/999999")
        assert missing.status_code == 404
        for odd in ("²", "٣", "1²"):  # digits to str.isdigit, not to int()
            assert cora.get(f"/fhir/EpisodeOfCare/{odd}").status_code == 404
        assert OperationOutcome.model_validate(missing.json()).issue[0].code == "not-found"
        bad = cora.post("/fhir/ServiceRequest", json={**referral("MRN-F2", "ORD-F2"), "status": "draft"})
        assert bad.status_code == 422
        assert "active" in bad.json()["issue"][0]["diagnostics"]
        condition = cora.post(
            "/fhir/ServiceRequest", json=referral("MRN-F2", "ORD-F2"), headers={"If-None-Exist": "name=x"}
        )
        assert condition.status_code == 422
        assert cora.get("/fhir/Patient/bad!id/$everything").status_code == 404
        # Nothing was enrolled by the refused requests.
        assert cora.get("/v1/patients/MRN-F2").status_code == 404


def test_patient_ids_lead_back_to_their_identifier() -> None:
    for identifier in ("MRN7", "a.b", "x_y:z/1", "P-1.2"):
        fhir_id = patient_id(identifier)
        assert all(c.isalnum() or c in "-." for c in fhir_id) and len(fhir_id) <= 64
        assert identifier_of(fhir_id) == identifier
