"""`/v1/patients/{patient}`: enroll, record, correct, fire a trigger; status, check, history
and observations (every read is written to the access log).

`GET /v1/patients/{patient}` gives an `ETag` (the enrollment's version); a change sent
with `If-Match` is refused with 412 when the enrollment has changed since.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.responses import JSONResponse, Response

from pathway.api import idempotency, problems
from pathway.api.context import Context, caller
from pathway.api.models import (
    Check,
    CorrectionIn,
    EnrollIn,
    Event,
    ObservationIn,
    ReopenIn,
    Status,
    Transitioned,
    TransitionIn,
    problem_responses,
)
from pathway.api.models import Observation as ObservationOut
from pathway.service.identity import Identity
from pathway.service.results import check_dict, event_dicts, observation_dict

router = APIRouter(prefix="/v1/patients/{patient}", tags=["patients"])

PatientId = Annotated[
    str,
    Path(
        description="The patient's identifier (e.g. an MRN).", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
    ),
]
PathwayQ = Annotated[str | None, Query(description="The pathway, when the patient has several enrollments.")]
AtQ = Annotated[str | None, Query(description="As of this date or time (default now).")]
IfMatch = Annotated[
    str | None, Header(description="The ETag of GET /v1/patients/{patient}: refuse if stale.")
]
Key = idempotency.Key


def etag(version: int) -> str:
    return f'"{version}"'


def expected(if_match: str | None) -> int | None:
    """The enrollment version an If-Match names (None: no precondition)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()):
        raise _Precondition()
    return int(text)


class _Precondition(Exception):
    pass


def _json(body: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def _write(
    ctx: Context,
    request: Request,
    ident: Identity,
    key: str | None,
    body: Any,
    run: Callable[[int | None], Response],
    if_match: str | None,
) -> Response:
    try:
        version = expected(if_match)
    except _Precondition:
        return problems.response(
            problems.problem(
                problems.PRECONDITION, 'If-Match: give the ETag of the patient\'s status, e.g. "3"'
            )
        )
    if key is None:
        return run(version)
    fingerprint = idempotency.request_hash(request.method, request.url.path, body, if_match, ident.role)
    return idempotency.run_once(ctx.clinic.store, ident.user, key, fingerprint, lambda: run(version))


@router.post(
    "/enrollments",
    status_code=201,
    response_model=Status,
    responses=problem_responses(403, 404, 409),
    summary="Enroll the patient in a pathway",
)
def enroll(patient: PatientId, body: EnrollIn, request: Request, c: caller, key: Key = None) -> Response:
    ctx, ident = c.identify()

    def run(_version: int | None) -> Response:
        pathway = body.pathway or ctx.clinic.catalog.default().id
        status = ctx.clinic.enroll(
            patient,
            pathway,
            profile=body.profile,
            name=body.name,
            at=body.at,
            actor=ident.user,
            role=ident.role,
            identifier_system=body.identifier_system,
        )
        ctx.metrics.changed("enroll")
        location = f"/v1/patients/{patient}"
        return _json(status.to_dict(), 201, ETag=etag(status.enrollment_version), Location=location)

    return _write(ctx, request, ident, key, body.model_dump(), run, None)


@router.get(
    "", response_model=Status, responses=problem_responses(404, 409), summary="Where the patient stands"
)
def status(patient: PatientId, c: caller, pathway: PathwayQ = None, at: AtQ = None) -> Response:
    ctx, ident = c.identify()
    found = ctx.clinic.status(patient, pathway=pathway, at=at)
    ctx.clinic.identities.log_access(ident, patient, "status")
    return _json(found.to_dict(), ETag=etag(found.enrollment_version))


@router.get(
    "/episodes", response_model=list[Status], responses=problem_responses(404), summary="Every episode"
)
def episodes(patient: PatientId, c: caller, pathway: PathwayQ = None) -> Response:
    ctx, ident = c.identify()
    found = ctx.clinic.episodes(patient, pathway=pathway)
    ctx.clinic.identities.log_access(ident, patient, "episodes")
    return _json([s.to_dict() for s in found])


@router.get(
    "/check",
    response_model=list[Check],
    responses=problem_responses(404, 409),
    summary="Why the patient can or cannot go on (changes nothing)",
)
def check(
    patient: PatientId,
    c: caller,
    trigger: Annotated[str | None, Query(description="Only this trigger.")] = None,
    reason: Annotated[str | None, Query(description="Judge as if this reason were given.")] = None,
    pathway: PathwayQ = None,
    at: AtQ = None,
) -> Response:
    ctx, ident = c.identify()
    found = ctx.clinic.check(patient, trigger, at=at, pathway=pathway, role=ident.role, reason=reason)
    ctx.clinic.identities.log_access(ident, patient, "check")
    return _json([check_dict(x) for x in found])


@router.get(
    "/history", response_model=list[Event], responses=problem_responses(404, 409), summary="The events"
)
def history(
    patient: PatientId,
    c: caller,
    pathway: PathwayQ = None,
    at: AtQ = None,
    audit: Annotated[bool, Query(description="Observations and corrections too (the audit trail).")] = False,
) -> Response:
    ctx, ident = c.identify()
    ctx.clinic.identities.log_access(ident, patient, "history")
    if audit:
        return _json(ctx.clinic.audit_trail(patient, pathway=pathway, at=at))
    return _json(event_dicts(ctx.clinic.history(patient, pathway=pathway, at=at)))


@router.get(
    "/observations",
    response_model=list[ObservationOut],
    responses=problem_responses(404, 409),
    summary="The observations with their values (corrections marked)",
)
def observations(
    patient: PatientId,
    c: caller,
    kind: Annotated[str | None, Query(description="Only this kind.")] = None,
    pathway: PathwayQ = None,
    at: AtQ = None,
) -> Response:
    ctx, ident = c.identify()
    found = ctx.clinic.observations(patient, pathway=pathway, kind=kind, at=at)
    ctx.clinic.identities.log_access(ident, patient, "observations")
    return _json([observation_dict(o) for o in found])


@router.post(
    "/observations",
    status_code=201,
    response_model=ObservationOut,
    responses=problem_responses(403, 404, 409, 412, 428),
    summary="Record an observation",
)
def record(
    patient: PatientId,
    body: ObservationIn,
    request: Request,
    c: caller,
    key: Key = None,
    if_match: IfMatch = None,
) -> Response:
    ctx, ident = c.identify()

    def run(version: int | None) -> Response:
        obs = ctx.clinic.record(
            patient,
            body.kind,
            body.values,
            at=body.at,
            pathway=body.pathway,
            actor=ident.user,
            role=ident.role,
            expected_version=version,
        )
        ctx.metrics.changed("record")
        return _json(observation_dict(obs), 201)

    return _write(ctx, request, ident, key, body.model_dump(), run, if_match)


@router.post(
    "/observations/{observation_id}/correction",
    response_model=ObservationOut,
    responses=problem_responses(403, 404, 409, 412, 428),
    summary="Mark an observation entered in error",
)
def correct(
    patient: PatientId,
    observation_id: Annotated[int, Path(ge=1, le=2**62)],
    body: CorrectionIn,
    request: Request,
    c: caller,
    key: Key = None,
    if_match: IfMatch = None,
) -> Response:
    ctx, ident = c.identify()

    def run(version: int | None) -> Response:
        obs = ctx.clinic.correct(
            patient,
            observation_id,
            reason=body.reason,
            at=body.at,
            actor=ident.user,
            role=ident.role,
            expected_version=version,
        )
        ctx.metrics.changed("correct")
        return _json(observation_dict(obs))

    return _write(ctx, request, ident, key, body.model_dump(), run, if_match)


@router.post(
    "/transitions",
    response_model=Transitioned,
    responses=problem_responses(403, 404, 409, 412, 428),
    summary="Fire a trigger (guards judged; a refusal says why)",
)
def advance(
    patient: PatientId,
    body: TransitionIn,
    request: Request,
    c: caller,
    key: Key = None,
    if_match: IfMatch = None,
) -> Response:
    ctx, ident = c.identify()

    def run(version: int | None) -> Response:
        try:
            done = ctx.clinic.advance(
                patient,
                body.trigger,
                at=body.at,
                reason=body.reason,
                pathway=body.pathway,
                actor=ident.user,
                role=ident.role,
                expected_version=version,
            )
        except Exception as exc:
            ctx.metrics.refused(exc)
            raise
        ctx.metrics.changed("advance")
        return _json(done.to_dict())

    return _write(ctx, request, ident, key, body.model_dump(), run, if_match)


@router.post(
    "/reopen",
    response_model=Transitioned,
    responses=problem_responses(403, 404, 409),
    summary="Reopen the closed episode whose close was entered in error",
)
def reopen(patient: PatientId, body: ReopenIn, request: Request, c: caller, key: Key = None) -> Response:
    ctx, ident = c.identify()

    def run(_version: int | None) -> Response:
        done = ctx.clinic.reopen(
            patient, reason=body.reason, at=body.at, pathway=body.pathway, actor=ident.user, role=ident.role
        )
        ctx.metrics.changed("reopen")
        return _json(done.to_dict())

    return _write(ctx, request, ident, key, body.model_dump(), run, None)


__all__ = ["Depends", "router"]
