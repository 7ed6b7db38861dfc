"""The request bodies and the documented responses of the HTTP API (pydantic models: the
OpenAPI document is generated from them). Responses are the same JSON the CLI prints
with `--json`; extra keys may be added in later versions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_TIME = "ISO date (the clinic's midnight) or date-time (with Z or an offset); default now."


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollIn(Body):
    pathway: str | None = Field(None, description="The pathway (default: the clinic's default pathway).")
    profile: str | None = Field(None, description="The pathway's profile (default its default profile).")
    name: str | None = Field(None, description="The patient's display name.")
    at: str | None = Field(None, description="When the referral was made. " + _TIME)
    identifier_system: str | None = Field(None, description="The system (URI) of the patient identifier.")


class ObservationIn(Body):
    kind: str = Field(..., description="The observation kind (see GET /v1/workflows/{id}).")
    values: dict[str, Any] = Field(default_factory=dict, description="The kind's fields and their values.")
    at: str | None = Field(None, description="When it was observed. " + _TIME)
    pathway: str | None = Field(None, description="The pathway, when the patient has several open.")


class CorrectionIn(Body):
    reason: str = Field(..., min_length=1, description="Why the observation was entered in error.")
    at: str | None = Field(None, description="When the error was found. " + _TIME)


class TransitionIn(Body):
    trigger: str = Field(..., description="The trigger to fire (reopen reopens a closed episode).")
    at: str | None = Field(None, description="When it happened. " + _TIME)
    reason: str | None = Field(None, description="The reason (required by some triggers: hold, reopen).")
    pathway: str | None = Field(None, description="The pathway, when the patient has several open.")


class ReopenIn(Body):
    reason: str = Field(..., min_length=1, description="What was entered in error (kept in the log).")
    at: str | None = Field(None, description="When it is reopened. " + _TIME)
    pathway: str | None = Field(None, description="The pathway of the closed episode (default the latest).")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Check(Open):
    trigger: str
    to: str
    allowed: bool
    role_allowed: bool
    roles: list[str]
    reasons: list[dict[str, Any]]


class Status(Open):
    patient: str
    name: str | None
    pathway: str
    version: int
    profile: str
    enrollment_id: int
    enrollment_version: int
    state: str
    held_from: str | None
    since: str
    days_in_state: int
    sla_days: int | None
    overdue: bool
    open: bool
    opened_at: str
    closed_at: str | None
    triggers: list[Check]
    timezone: str


class Transitioned(Open):
    refused: bool
    patient: str
    pathway: str
    trigger: str
    from_: str = Field(..., alias="from")
    to: str
    at: str
    seq: int


class Observation(Open):
    id: int
    kind: str
    data: dict[str, Any]
    at: str
    recorded_at: str
    actor: str
    role: str
    entered_in_error: bool
    error_reason: str | None


class Event(Open):
    seq: int
    trigger: str
    from_state: str | None = Field(None, alias="from")
    to: str | None = None
    at: str | None = None


class Summary(Open):
    patient: str
    name: str | None
    pathway: str
    version: int
    state: str
    since: str
    days_in_state: int
    sla_days: int | None
    overdue: bool
    open: bool


class Page(Open):
    items: list[Summary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null at the end.")


class WorklistItem(Open):
    patient: str
    pathway: str
    state: str
    kind: str
    action: str
    urgency: float
    trigger: str | None


class Access(Open):
    at: str
    actor: str
    role: str
    what: str


class Me(Open):
    user: str
    roles: list[str]
    role: str
    via: str


class Problem(Open):
    type: str = Field(..., description="A URN naming the problem (urn:pathway:problem:...).")
    title: str
    status: int
    detail: str
    exit_code: int = Field(..., description="The exit code the CLI gives for the same error.")
    reasons: list[dict[str, Any]] | None = Field(None, description="Guard refusals: each failed guard.")
    problems: list[str] | None = Field(None, description="Invalid input: each problem, field first.")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route may give, for the OpenAPI document."""
    described = {
        400: "Malformed request",
        401: "No or bad credentials",
        403: "The role may not do this",
        404: "Not found",
        409: "Refused by a guard, an invalid trigger, or a concurrent change (see type)",
        412: "If-Match names a version the enrollment no longer has",
        422: "Invalid input (each problem names its field)",
        428: "If-Match is not an ETag of the enrollment",
        503: "The database cannot be used",
    }
    return {
        s: {
            "model": Problem,
            "description": described[s],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in sorted({400, 401, 403, 422, 503, *statuses})
    }
