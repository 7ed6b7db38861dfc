"""Running the service: `pathway serve` starts uvicorn on `app_from_environment`, which each
worker process calls to open its own clinic (the database URL and options travel in
`PATHWAY_*` environment variables, so several workers can be started the same way).

SIGTERM or Ctrl-C stops taking connections, lets requests in flight finish (up to
`GRACE` seconds) and closes the database. Logs are JSON lines on standard error with no
personal data (uvicorn's own access log, which prints paths, is off).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from pathway.api import affinity
from pathway.api import workers as balanced
from pathway.api.app import FIELDS, create_app
from pathway.api.auth import Oidc
from pathway.clinic import Clinic
from pathway.errors import InvalidInput

GRACE = 10
_ENV = {
    "db": "PATHWAY_DB",
    "workflows": "PATHWAY_WORKFLOWS",
    "oidc_issuer": "PATHWAY_OIDC_ISSUER",
    "oidc_audience": "PATHWAY_OIDC_AUDIENCE",
    "oidc_jwks": "PATHWAY_OIDC_JWKS",
    "oidc_roles_claim": "PATHWAY_OIDC_ROLES_CLAIM",
    "oidc_user_claim": "PATHWAY_OIDC_USER_CLAIM",
}


def oidc_of(options: dict[str, str | None]) -> Oidc | None:
    issuer, audience, jwks = (options.get(k) for k in ("oidc_issuer", "oidc_audience", "oidc_jwks"))
    if not (issuer or audience or jwks):
        return None
    if not (issuer and audience and jwks):
        raise InvalidInput("--oidc-issuer, --oidc-audience and --oidc-jwks go together: give all three")
    claims = {k: v for k, v in (("roles_claim", options.get("oidc_roles_claim")),) if v}
    if options.get("oidc_user_claim"):
        claims["user_claim"] = str(options["oidc_user_claim"])
    return Oidc.load(issuer, audience, jwks, **claims)


def app_from_environment() -> FastAPI:
    """The app of one worker: its clinic opened from the `PATHWAY_*` variables."""
    slots = os.environ.get(affinity.ENV)
    if slots:  # before any thread starts: the threads to come keep to the core too
        core = affinity.claim_core(Path(slots))
        logging.getLogger("pathway.api").info(
            "worker kept to one core", extra={FIELDS: {"event": "pinned", "cpu": core, "pid": os.getpid()}}
        )
    _lean_log_records()
    options = {k: os.environ.get(v) for k, v in _ENV.items()}
    workflows = [p for p in (options["workflows"] or "").split(os.pathsep) if p]
    clinic = Clinic.open(options["db"] or "sqlite:///pathway.db", workflows=workflows, create=False)
    clinic.store.check_ready()
    app = create_app(clinic, oidc=oidc_of(options))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        clinic.close()

    app.router.lifespan_context = lifespan
    return app


def serve(
    *,
    db: str,
    host: str,
    port: int,
    workers: int,
    workflows: tuple[str, ...] = (),
    oidc: dict[str, str | None] | None = None,
    pin_cpus: bool = False,
) -> None:
    """Run the service until SIGTERM or Ctrl-C (see the module's docstring)."""
    import uvicorn

    if workers < 1:
        raise InvalidInput("--workers: at least 1")
    if pin_cpus and not affinity.available():
        raise InvalidInput("--pin-cpus: this system cannot keep a process to a core (Linux can)")
    if workers > 1 and db.startswith("sqlite"):
        raise InvalidInput("--workers: SQLite takes one writer at a time: use 1 worker (or PostgreSQL)")
    oidc_of(dict(oidc or {}))  # refuse a bad identity-provider setting before starting
    os.environ["PATHWAY_DB"] = db
    os.environ["PATHWAY_WORKFLOWS"] = os.pathsep.join(workflows)
    for key, value in (oidc or {}).items():
        if value:
            os.environ[_ENV[key]] = value
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pathway-metrics-")
    # Check the database once here: a wrong URL or an old schema is one clear line, not a
    # traceback per worker.
    with Clinic.open(db, workflows=workflows, create=False) as clinic:
        clinic.store.check_ready()
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # it found: that handler ends the process with 0 (a stop asked for is not a failure).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    slots = tempfile.mkdtemp(prefix="pathway-cpus-") if pin_cpus else None
    if slots:
        os.environ[affinity.ENV] = slots
    config: dict[str, Any] = {
        "app": "pathway.api.server:app_from_environment",
        "factory": True,
        "access_log": False,
        "log_config": _log_config(),
        "timeout_graceful_shutdown": GRACE,
        "proxy_headers": False,
    }
    try:
        if workers > 1 and balanced.available():  # a listening socket a worker (workers.py)
            if balanced.run(workers, host, port, config, GRACE):
                raise SystemExit(1)
        else:
            uvicorn.run(host=host, port=port, workers=workers, **config)
    finally:
        if slots:
            shutil.rmtree(slots, ignore_errors=True)


def _lean_log_records() -> None:
    """A log record without what the JSON lines never show: the calling file and line
    (found by walking the stack for every record), the thread's and the process's names
    (the logging HOWTO's "Optimization"): a request's line costs less."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None


def _log_config() -> dict[str, Any]:
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "pathway.api.server.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "pathway.api": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "pathway.store": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, and the message; the service's own
    lines carry their fields in the record's `FIELDS` attribute, merged in as they are.

    A line about an exception (uvicorn's "Exception in ASGI application", the service's
    internal error) names its type and `where` it was raised, as code locations
    (file:line function, innermost last): never its message, which may quote personal
    data (a patient's identifier in a database error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            entry.setdefault("error", type(record.exc_info[1]).__name__)
            entry["where"] = where(record.exc_info[1])
        return json.dumps(entry)


def where(exc: BaseException, frames: int = 12) -> list[str]:
    """The code locations an exception passed through (its cause's first), innermost last."""
    found: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found[:0] = [
            f"{_short(f.filename)}:{f.lineno} {f.name}" for f in traceback.extract_tb(current.__traceback__)
        ]
        current = current.__cause__ or current.__context__
    return found[-frames:]


def _short(filename: str) -> str:
    """A file named from the folder it was imported from (site-packages/..., pathway/...)."""
    for root in _ROOTS:
        if filename.startswith(root):
            return filename[len(root) :]
    return filename


_ROOTS = sorted(
    {os.path.join(p, "") for p in [str(Path(__file__).parents[2]), *sys.path] if p}, key=len, reverse=True
)


if __name__ == "__main__":  # pragma: no cover - `pathway serve` is the way in
    sys.exit("run: pathway serve")
