"""The clinic service as an ASGI application (FastAPI on uvicorn; `pathway serve` runs it).

FastAPI because the OpenAPI 3.1 document comes from the typed routes and pydantic models
the code already needs (no hand-kept spec to drift from the routes), request validation
gives field-named errors for free, and it is Starlette underneath (plain ASGI, served by
uvicorn, tested with httpx). Routes are plain `def`: the engine is synchronous, and
FastAPI runs each in its thread pool.

Every error is an RFC 9457 problem (`problems.py`); every request is counted in
`/metrics` and logged as one JSON line without personal data (the route's template, not
its path; the user, not the patient).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from pathway.api import fhir, lists, patients, problems, workspace
from pathway.api.auth import Oidc
from pathway.api.context import Context, pending_caller
from pathway.clinic import Clinic
from pathway.errors import PathwayError, StoreError

log = logging.getLogger("pathway.api")
FIELDS = "pathway_fields"  # a log record's structured fields (server.JsonFormatter writes them)
VERSION = "1"


def create_app(clinic: Clinic, *, oidc: Oidc | None = None) -> FastAPI:
    """The service over `clinic` (one per process; the caller closes it)."""
    app = FastAPI(
        title="pathway clinic service",
        version=VERSION,
        summary="Clinical pathways as guarded state machines: enroll, record, advance, ask why.",
        description=(
            "Every request carries `Authorization: Bearer TOKEN` (`pathway tokens create`); a user "
            "with several roles names one with `X-Pathway-Role`. Errors are RFC 9457 problem "
            "details. Every POST accepts `Idempotency-Key`. `GET /v1/patients/{patient}` gives an "
            "ETag; changes sent with `If-Match` are refused (412) when it is stale."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = Context(clinic, oidc)
    clinic.store.cache_tokens()  # a bearer token costs no query (PostgreSQL; store/token_cache.py)
    app.include_router(patients.router)
    app.include_router(lists.router)
    app.include_router(fhir.router)
    app.include_router(workspace.router)
    _add_operations(app)
    _add_error_handlers(app)
    app.add_middleware(RequestLog, context=app.state.context)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        if request.url.path.startswith("/fhir/"):
            return problems.outcome(body, headers)
        return problems.response(body, headers)

    @app.exception_handler(PathwayError)
    async def engine_error(request: Request, exc: PathwayError) -> Response:
        return answer(request, problems.problem_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        waiting = pending_caller(request)
        if waiting is not None:  # bad credentials are answered before invalid input
            try:
                await run_in_threadpool(waiting.identify)
            except PathwayError as refused:
                return answer(request, problems.problem_of(refused))
        found = [_field_problem(e) for e in exc.errors()]
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        kind = problems.BAD_REQUEST if malformed else (422, "invalid-input", "Invalid input")
        return answer(request, problems.problem(kind, "; ".join(found), problems=found))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        kind = (exc.status_code, slug, str(exc.detail))
        return answer(request, problems.problem(kind, str(exc.detail)), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        fields = {"event": "internal_error", "error": type(exc).__name__}
        log.error("internal error", exc_info=exc, extra={FIELDS: fields})
        return answer(request, problems.problem(problems.INTERNAL, "internal error: see the service's log"))


def _field_problem(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return f"body: not valid JSON (at character {error.get('loc', ('', '?'))[-1]})"
    where = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    return f"{'.'.join(where) or 'body'}: {error.get('msg', 'invalid')}"


class RequestLog:
    """ASGI middleware (plain, cheaper than BaseHTTPMiddleware): counts and times every
    request in `/metrics` and logs it as one JSON line, by the route's template."""

    def __init__(self, app: Any, context: Context) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = str(getattr(scope.get("route"), "path", None) or "unmatched")
            method = scope.get("method", "")
            self.context.metrics.observe(method, route, status, seconds)
            identity = scope.get("state", {}).get("identity")
            if log.isEnabledFor(logging.INFO):
                entry = {
                    "event": "request",
                    "method": method,
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "user": identity.user if identity else None,
                    "role": identity.role if identity else None,
                }
                log.info("request", extra={FIELDS: entry})


def _add_operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], response_model=dict[str, str])
    def healthz() -> Response:
        """The process is up (no database check: see /readyz)."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", tags=["operations"], response_model=dict[str, Any])
    def readyz(request: Request) -> Response:
        """The database answers and its schema is the one this version expects (503 if not)."""
        clinic: Clinic = request.app.state.context.clinic
        try:
            clinic.store.check_ready()
        except Exception as exc:  # any failure means not ready
            detail = str(exc) if isinstance(exc, StoreError) else f"database error ({type(exc).__name__})"
            return problems.response(problems.problem((503, "not-ready", "Not ready"), detail))
        return JSONResponse({"status": "ready", "schema": clinic.store.schema_revision()})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics(request: Request) -> Response:
        """Prometheus metrics (text exposition format)."""
        context: Context = request.app.state.context
        body = context.metrics.exposition(context.clinic)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/schemas/outbox", tags=["integration"], response_model=dict[str, Any])
    def outbox_schema() -> Response:
        """The JSON Schema of the outbox envelope, every message type documented."""
        from pathway.domain.envelope_schema import schema

        return JSONResponse(schema())
