"""The clinic-wide reads: enrollments (filtered, paged by cursor), the worklist, the reports,
the workflows, and who the caller is. Lists that name patients are written to the access
log, one entry per patient shown."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from pathway.api.context import caller
from pathway.api.models import Me, Page, WorklistItem, problem_responses
from pathway.errors import InvalidInput

router = APIRouter(prefix="/v1")

PathwayQ = Annotated[str | None, Query(description="Only this pathway.")]
AsOfQ = Annotated[str | None, Query(description="As of this date or time (default now).")]


def _cursor(text: str | None) -> list[Any] | None:
    if not text:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this service gave (use next_cursor as it is)") from None
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise InvalidInput("cursor: not a cursor this service gave (use next_cursor as it is)")
    return key


def _encode(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@router.get("/enrollments", response_model=Page, responses=problem_responses(404), tags=["enrollments"])
def enrollments(
    c: caller,
    pathway: PathwayQ = None,
    state: Annotated[str | None, Query(description="Only enrollments in this state.")] = None,
    open: Annotated[bool, Query(description="Only open enrollments.")] = False,
    at: AsOfQ = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many per page.")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> Response:
    """Enrollments, longest waiting first (as `pathway list`)."""
    ctx, ident = c.identify()
    after = _cursor(cursor)
    rows = [r.to_dict() for r in ctx.clinic.list(pathway=pathway, state=state, open_only=open, at=at)]
    keys = [[r["since"], r["patient"], r["pathway"]] for r in rows]
    start = 0
    if after is not None:
        start = next((i for i, k in enumerate(keys) if k > after), len(rows))
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    next_cursor = _encode(keys[start + limit - 1]) if more else None
    _log_many(ctx, ident, [r["patient"] for r in page], "enrollments list")
    return JSONResponse({"items": page, "next_cursor": next_cursor})


@router.get(
    "/worklist", response_model=list[WorklistItem], responses=problem_responses(404), tags=["worklist"]
)
def worklist(
    c: caller,
    as_of: AsOfQ = None,
    role: Annotated[str | None, Query(description="Only the items this role can act on.")] = None,
    kind: Annotated[list[str] | None, Query(description="Only these kinds (repeatable).")] = None,
    state: Annotated[str | None, Query(description="Only patients in this state.")] = None,
    pathway: PathwayQ = None,
    due_within: Annotated[
        int | None, Query(ge=0, le=3650, description="Only what is due within DAYS.")
    ] = None,
) -> Response:
    """What needs action, most urgent first (as `pathway worklist --json`)."""
    ctx, ident = c.identify()
    found = ctx.clinic.worklist(
        as_of=as_of, role=role, kinds=kind or (), state=state, pathway=pathway, due_within=due_within
    )
    items = [i.to_dict() for i in found]
    _log_many(ctx, ident, [i["patient"] for i in items], "worklist")
    return JSONResponse(items)


@router.get(
    "/reports/{name}", responses=problem_responses(404), tags=["reports"], response_model=dict[str, Any]
)
def report(
    name: Literal["bottlenecks", "rtt", "funnel", "outcomes"],
    c: caller,
    pathway: PathwayQ = None,
    as_of: AsOfQ = None,
    since: Annotated[str | None, Query(description="bottlenecks: stays from this date.")] = None,
    until: Annotated[str | None, Query(description="bottlenecks: stays until this date.")] = None,
) -> Response:
    """A report as `pathway report NAME --json` prints it."""
    ctx, _ = c.identify()
    clinic = ctx.clinic
    data: dict[str, Any]
    if name == "bottlenecks":
        data = clinic.report_bottlenecks(pathway=pathway, since=since, until=until, as_of=as_of).to_dict()
    elif name == "rtt":
        data = clinic.report_rtt(pathway=pathway, as_of=as_of).to_dict()
    elif name == "funnel":
        data = clinic.report_funnel(pathway=pathway, as_of=as_of)
    else:
        data = clinic.report_outcomes(pathway=pathway, as_of=as_of)
    return JSONResponse(data)


@router.get(
    "/workflows", tags=["workflows"], response_model=list[dict[str, Any]], responses=problem_responses()
)
def workflows(c: caller) -> Response:
    """Every loaded pathway and version."""
    ctx, _ = c.identify()
    rows = [
        {
            "id": w.id,
            "version": w.version,
            "title": w.title,
            "region": w.region,
            "default": w.default,
            "states": len(w.states),
            "triggers": len(w.triggers),
        }
        for w in ctx.clinic.catalog.all()
    ]
    return JSONResponse(rows)


@router.get(
    "/workflows/{workflow_id}",
    tags=["workflows"],
    response_model=dict[str, Any],
    responses=problem_responses(404),
)
def workflow(
    workflow_id: str,
    c: caller,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="A version (default the latest).")
    ] = None,
) -> Response:
    """States, transitions, observation kinds (with their fields) and profiles of a pathway."""
    from pathway.definitions.describe import describe_workflow

    ctx, _ = c.identify()
    return JSONResponse(describe_workflow(ctx.clinic.catalog.get(workflow_id, version)))


@router.get("/me", response_model=Me, responses=problem_responses(403), tags=["identity"])
def me(c: caller) -> Response:
    """Who the credentials are, and the role this request acts in."""
    return JSONResponse(c.identify()[1].to_dict())


def _log_many(ctx: Any, ident: Any, patients: list[str], what: str) -> None:
    ctx.clinic.identities.log_access(ident, patients, what)
