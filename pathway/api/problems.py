"""Errors as RFC 9457 problem details (`application/problem+json`), one table for all.

Each `PathwayError` class has one status and one `type` (a URN naming the problem); the
`detail` is the same message the CLI prints, and `exit_code` the code the CLI exits with,
so `pathway --server` can give the same result as on the database. A guard refusal carries
`reasons: [{guard, message, ...}]`; invalid input its `problems` (each names its field).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from pathway.domain.verdicts import reasons
from pathway.errors import (
    AlreadyEnrolled,
    AmbiguousEnrollment,
    ConcurrencyError,
    DefinitionError,
    EnrollmentClosed,
    EnrollmentNotClosed,
    GuardError,
    GuardRefused,
    InvalidInput,
    InvalidTrigger,
    NotAuthenticated,
    NotFound,
    PathwayError,
    RoleRefused,
    StoreError,
    VersionMismatch,
)

MEDIA_TYPE = "application/problem+json"
PREFIX = "urn:pathway:problem:"

#: (class, HTTP status, type slug, title), most specific first.
TABLE: tuple[tuple[type[PathwayError], int, str, str], ...] = (
    (NotAuthenticated, 401, "not-authenticated", "No valid credentials"),
    (RoleRefused, 403, "role-refused", "The role may not do this"),
    (NotFound, 404, "not-found", "Not found"),
    (GuardRefused, 409, "guard-refused", "Refused by the pathway's rules"),
    (VersionMismatch, 412, "stale-version", "The enrollment changed since it was read"),
    (ConcurrencyError, 409, "concurrent-change", "Changed by someone else at the same time"),
    (InvalidTrigger, 409, "invalid-trigger", "The trigger cannot fire now"),
    (EnrollmentClosed, 409, "enrollment-closed", "The enrollment is closed"),
    (EnrollmentNotClosed, 409, "enrollment-not-closed", "No closed episode to reopen"),
    (AlreadyEnrolled, 409, "already-enrolled", "Already enrolled"),
    (AmbiguousEnrollment, 409, "ambiguous-enrollment", "Several open enrollments: name the pathway"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (GuardError, 500, "guard-fault", "A guard of the pathway failed"),
    (DefinitionError, 500, "definition-error", "A workflow file is invalid"),
    (StoreError, 503, "store-unavailable", "The database cannot be used"),
    (PathwayError, 400, "error", "The request cannot be done"),
)
#: Problems the service raises itself (not from the engine).
BAD_REQUEST = (400, "bad-request", "The request is malformed")
IDEMPOTENCY_MISMATCH = (422, "idempotency-key-reused", "The Idempotency-Key was used with another request")
IDEMPOTENCY_IN_PROGRESS = (409, "idempotency-in-progress", "A request with this Idempotency-Key is running")
PRECONDITION = (428, "precondition-malformed", "If-Match must be an ETag of the enrollment")
INTERNAL = (500, "internal", "Internal error")
#: The CLI's exit code of a problem the engine did not raise.
EXIT_OF_STATUS = {400: 1, 401: 1, 403: 3, 404: 4, 409: 1, 412: 5, 422: 1, 428: 1}


def problem_of(exc: PathwayError) -> dict[str, Any]:
    """The problem document of an engine error."""
    status, slug, title = next((st, sl, t) for cls, st, sl, t in TABLE if isinstance(exc, cls))
    body: dict[str, Any] = {
        "type": PREFIX + slug,
        "title": title,
        "status": status,
        "detail": str(exc),
        "error": type(exc).__name__,
        "exit_code": exc.exit_code,
    }
    if isinstance(exc, GuardRefused):
        body["trigger"] = exc.trigger
        body["reasons"] = reasons(list(exc.verdicts))
    elif isinstance(exc, InvalidInput):
        body["problems"] = list(exc.problems)
    elif isinstance(exc, RoleRefused):
        body["roles"] = list(exc.needed)
    return body


def problem(kind: tuple[int, str, str], detail: str, **extra: Any) -> dict[str, Any]:
    status, slug, title = kind
    return {
        "type": PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "exit_code": EXIT_OF_STATUS.get(status, 1),
        **extra,
    }


def response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    status = int(body["status"])
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="pathway"')
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=extra)


FHIR_MEDIA_TYPE = "application/fhir+json"
#: HTTP status -> OperationOutcome.issue.code
_ISSUE = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict",
          412: "conflict", 422: "invalid", 428: "required", 503: "transient"}  # fmt: skip


def outcome(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem as the FHIR face answers it: an OperationOutcome with the same status (and
    the same headers: `Allow` of a 405, `Retry-After`)."""
    status = int(body["status"])
    details = [body["detail"], *[p for p in body.get("problems") or () if p != body["detail"]]]
    issues = [
        {"severity": "error", "code": _ISSUE.get(status, "exception"), "diagnostics": text}
        for text in details
    ]
    for reason in body.get("reasons") or ():
        issues.append(
            {"severity": "error", "code": "business-rule", "diagnostics": reason.get("message", "")}
        )
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="pathway"')
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status,
        media_type=FHIR_MEDIA_TYPE,
        headers=extra,
    )
