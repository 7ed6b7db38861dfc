"""The FHIR face (R4B) of the service under `/fhir`: the capability statement, patient
search by identifier, `$everything`, EpisodeOfCare read and referral (ServiceRequest)
create, conditional on `If-None-Exist`. Errors are OperationOutcomes; reads are logged."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import JSONResponse, Response

from pathway.api import idempotency, problems
from pathway.api.context import caller
from pathway.api.problems import FHIR_MEDIA_TYPE
from pathway.interop.fhir import rest


class FhirResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


_OUTCOME = {"content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": f"An OperationOutcome ({what})", **_OUTCOME}
    for status, what in (
        (400, "malformed"),
        (401, "no or bad credentials"),
        (403, "role refused"),
        (404, "not found"),
        (409, "refused or conflicting"),
        (422, "invalid"),
        (503, "database unavailable"),
    )
}
router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse, responses=_ERRORS)


def _fhir(body: Any, status: int = 200, **headers: str) -> JSONResponse:
    return FhirResponse(body, status_code=status, headers=headers or None)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@router.get("/metadata", response_model=dict[str, Any])
def metadata(request: Request) -> Response:
    """The CapabilityStatement (no credentials needed, as FHIR servers do)."""
    return _fhir(rest.capability_statement(_base(request), version("pathway-clinic")))


@router.get("/Patient", response_model=dict[str, Any])
def search_patients(
    request: Request,
    c: caller,
    identifier: Annotated[str, Query(description="system|value, or value", min_length=1, max_length=400)],
) -> Response:
    """Patients with this identifier (a searchset Bundle)."""
    ctx, ident = c.identify()
    bundle = rest.search_patients(ctx.clinic, identifier, _base(request))
    patients = [e["resource"]["identifier"][0]["value"] for e in bundle["entry"]]
    ctx.clinic.identities.log_access(ident, patients, "fhir Patient search")
    return _fhir(bundle)


@router.get("/Patient/{patient_id}/$everything", response_model=dict[str, Any])
def everything(patient_id: str, c: caller) -> Response:
    """The patient's episode as a Bundle (as `pathway export fhir`)."""
    ctx, ident = c.identify()
    bundle = rest.everything(ctx.clinic, patient_id)
    ctx.clinic.identities.log_access(ident, rest.identifier_of(patient_id), "fhir Patient/$everything")
    return _fhir(bundle)


@router.get("/EpisodeOfCare/{episode_id}", response_model=dict[str, Any])
def episode(episode_id: str, c: caller) -> Response:
    """One episode (enrollment) with its status history."""
    ctx, ident = c.identify()
    patient, resource = rest.episode(ctx.clinic, episode_id)
    ctx.clinic.identities.log_access(ident, patient, "fhir EpisodeOfCare")
    return _fhir(resource)


@router.post("/ServiceRequest", status_code=201, response_model=dict[str, Any])
def create_referral(
    request: Request,
    c: caller,
    body: Annotated[
        dict[str, Any], Body(description="A FHIR ServiceRequest (or a Bundle with one and its Patient)")
    ],
    if_none_exist: Annotated[
        str | None, Header(description="identifier=system|value: do nothing if that referral is known")
    ] = None,
    key: idempotency.Key = None,
) -> Response:
    """Enroll the patient of a referral; 200 with the episode when it is known already.
    With `Idempotency-Key`, a retry of the same request gets the first response again."""
    ctx, ident = c.identify()

    def run() -> Response:
        created, resource = rest.create_referral(
            ctx.clinic, body, if_none_exist, actor=ident.user, role=ident.role
        )
        if created:
            ctx.metrics.changed("enroll")
            return _fhir(resource, 201, Location=f"/fhir/EpisodeOfCare/{resource['id']}")
        return _fhir(resource, 200)

    if key is None:
        return run()
    fingerprint = idempotency.request_hash(request.method, request.url.path, body, if_none_exist, ident.role)
    return idempotency.run_once(ctx.clinic.store, ident.user, key, fingerprint, run, problems.outcome)
