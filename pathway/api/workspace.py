"""The coordinators' workspace at `/` of `pathway serve`: server-rendered pages (Jinja2, plain
forms, no script) for signing in, the worklist, the patient (observations recorded through
forms made from the workflow's field definitions, a button per possible step that says
why it is refused before it is tried, hold/resume/reopen with a reason, corrections) and
the manager's report.

Sign-in takes a user's password (argon2; five failures lock the user out for 15 minutes).
The session is a random cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) of which
only a hash is stored; every form carries the session's CSRF token. Every page runs as
the signed-in user in their role, and every patient read is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pathway.api.context import Context, context
from pathway.api.forms import field_inputs, form_values
from pathway.errors import GuardRefused, InvalidInput, NotAuthenticated, NotFound, PathwayError, RoleRefused
from pathway.service.identity import Identity, choose_role

COOKIE = "pathway_session"
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))  # autoescapes .html


def _signed_in(request: Request) -> tuple[Context, Identity, str] | None:
    ctx = context(request)
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    try:
        ident, csrf = ctx.clinic.identities.session(secret)
    except NotAuthenticated:
        return None
    request.state.identity = ident
    return ctx, ident, csrf


def _to_signin() -> Response:
    return RedirectResponse("/signin", status_code=303)


def _page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    page: HTMLResponse = templates.TemplateResponse(request, template, values, status_code=status)
    return page


async def _form(request: Request) -> dict[str, list[str]]:
    data = await request.form()
    found: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        found.setdefault(key, []).append(str(value))
    return found


def _csrf_ok(form: dict[str, list[str]], csrf: str) -> bool:
    return (form.get("csrf") or [""])[0] == csrf


# sign-in --------------------------------------------------------------------------------
@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    roles = sorted(context(request).known_roles)
    return _page(request, "signin.html", roles=roles, error=None, name="")


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_sign_in, request, form)  # argon2 and the database: off the loop


def _sign_in(request: Request, form: dict[str, list[str]]) -> Response:
    ctx = context(request)
    name = (form.get("name") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    asked = (form.get("role") or [""])[0] or None
    roles = sorted(ctx.known_roles)
    try:
        user = ctx.clinic.identities.sign_in(name, password)
        role = choose_role(user["name"], tuple(user["roles"]), asked or user["roles"][0])
    except (NotAuthenticated, RoleRefused, InvalidInput) as exc:
        return _page(request, "signin.html", 401, roles=roles, error=str(exc), name=name)
    secret, _ = ctx.clinic.identities.open_session(user, role)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=8 * 3600,
        path="/",
    )
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_sign_out, request, form)


def _sign_out(request: Request, form: dict[str, list[str]]) -> Response:
    found = _signed_in(request)
    if found is not None and _csrf_ok(form, found[2]):
        found[0].clinic.identities.end_session(request.cookies[COOKIE])
    response = _to_signin()
    response.delete_cookie(COOKIE, path="/")
    return response


# the worklist ---------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def worklist_page(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_signin()
    ctx, ident, csrf = found
    q = request.query_params
    kinds = [k for k in q.getlist("kind") if k]
    due = q.get("due_within") or None
    state, pathway = q.get("state") or None, q.get("pathway") or None
    error = None
    try:
        items = ctx.clinic.worklist(
            kinds=kinds, state=state, pathway=pathway, due_within=int(due) if due else None
        )
    except (InvalidInput, NotFound, ValueError) as exc:
        items, error = [], str(exc) if not isinstance(exc, ValueError) else "due within: a number of days"
    ctx.clinic.identities.log_access(ident, [i.patient for i in items], "workspace worklist")
    from pathway.service.worklist_kinds import KINDS

    states = sorted({s for w in ctx.clinic.catalog.all() for s in w.states})
    return _page(
        request,
        "worklist.html",
        ident=ident,
        csrf=csrf,
        items=[i.to_dict() for i in items],
        kinds=KINDS,
        states=states,
        pathways=ctx.clinic.catalog.ids(),
        chosen={"kinds": kinds, "state": state, "pathway": pathway, "due_within": due or ""},
        error=error,
    )


# the patient ----------------------------------------------------------------------------
def _patient_page(
    request: Request,
    ctx: Context,
    ident: Identity,
    csrf: str,
    patient: str,
    status: int = 200,
    **notes: Any,
) -> Response:
    try:
        view = ctx.clinic.patient_view(patient, role=ident.role)
    except (NotFound, InvalidInput) as exc:
        return _page(request, "missing.html", 404, ident=ident, csrf=csrf, message=str(exc))
    ctx.clinic.identities.log_access(ident, patient, "workspace patient")
    current = view["episodes"][0]
    workflow = ctx.clinic.catalog.get(current["pathway"], current["version"])
    checks = current["next"] if current["open"] else []
    kinds = [
        {
            "name": spec.name,
            "description": spec.description,
            "allowed": ident.role in spec.roles,
            "roles": spec.roles,
            "inputs": field_inputs(spec, notes.get("values") if notes.get("kind") == spec.name else None),
        }
        for spec in workflow.kinds.values()
    ]
    return _page(
        request,
        "patient.html",
        status,
        ident=ident,
        csrf=csrf,
        view=view,
        quoted=quote(patient, safe=""),
        checks=checks,
        kinds=kinds,
        reopen=workflow.declarations.reopen,
        **notes,
    )


@router.get("/patients/{patient}", response_class=HTMLResponse)
def patient_page(request: Request, patient: str) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_signin()
    return _patient_page(request, *found, patient)


@router.post("/patients/{patient}/{action}", response_class=HTMLResponse)
async def patient_action(request: Request, patient: str, action: str) -> Response:
    form = await _form(request)  # the body is read on the loop; the engine runs in the thread pool
    return await run_in_threadpool(_patient_action, request, patient, action, form)


def _patient_action(request: Request, patient: str, action: str, form: dict[str, list[str]]) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_signin()
    ctx, ident, csrf = found
    if not _csrf_ok(form, csrf):
        return _page(
            request, "missing.html", 403, ident=ident, csrf=csrf, message="the form expired: reload the page"
        )

    def one(key: str) -> str | None:
        value = (form.get(key) or [""])[0].strip()
        return value or None

    actor, role = ident.user, ident.role
    kind = one("kind")
    try:
        if action == "record" and kind:
            spec = ctx.clinic.catalog.get(ctx.clinic.status(patient).pathway).kinds.get(kind)
            values = form_values(spec, form) if spec else {}
            obs = ctx.clinic.record(patient, kind, values, at=one("at"), actor=actor, role=role)
            done = f"recorded {obs.kind} #{obs.id}"
        elif action == "advance" and one("trigger"):
            trigger, reason = one("trigger") or "", one("reason")
            moved = ctx.clinic.advance(patient, trigger, reason=reason, at=one("at"), actor=actor, role=role)
            done = f"{moved.trigger}: {moved.from_state} -> {moved.to_state}"
        elif action == "correct" and one("observation"):
            text = one("observation") or ""
            if not (text.isascii() and text.isdigit()):
                raise InvalidInput(f"observation: {text!r} is not an observation's number")
            number = int(text)
            obs = ctx.clinic.correct(patient, number, reason=one("reason") or "", actor=actor, role=role)
            done = f"marked {obs.kind} #{obs.id} entered in error"
        else:
            raise InvalidInput(f"unknown action {action!r}")
    except InvalidInput as exc:
        problems = list(exc.problems)
        return _patient_page(
            request, ctx, ident, csrf, patient, 422, error=str(exc), problems=problems, kind=kind,
            values={k: v for k, v in form.items() if k not in ("csrf", "kind")},
        )  # fmt: skip
    except GuardRefused as exc:
        from pathway.domain.verdicts import reasons

        return _patient_page(
            request, ctx, ident, csrf, patient, 409, error=str(exc), reasons=reasons(list(exc.verdicts))
        )
    except PathwayError as exc:
        return _patient_page(request, ctx, ident, csrf, patient, 409, error=str(exc))
    return _patient_page(request, ctx, ident, csrf, patient, done=done)


# the manager's page ---------------------------------------------------------------------
@router.get("/manager", response_class=HTMLResponse)
def manager_page(request: Request) -> Response:
    found = _signed_in(request)
    if found is None:
        return _to_signin()
    ctx = found[0]
    return HTMLResponse(ctx.clinic.report_html())
