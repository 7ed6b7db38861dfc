"""`Idempotency-Key` on every POST (as Stripe's): the same key and request within 24 hours
returns the first response without doing anything again; the same key with another
request is refused (422); a retry while the first is still running gets 409.

Keys are kept in the database (`idempotency_keys`), by caller (the user) and key, so this
holds across workers and restarts. A response the server failed to produce (5xx) releases
the key: the retry runs. A key whose request never finished (the process died) is taken
over after `ABANDONED`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from starlette.responses import Response

from pathway.api import problems
from pathway.domain.timeutil import utcnow
from pathway.errors import PathwayError
from pathway.store import requests
from pathway.store.repository import Store

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
ABANDONED = timedelta(minutes=5)
MAX_KEY = 255
REPLAYED = "Idempotent-Replayed"

#: The header as a route's parameter.
Key = Annotated[str | None, Header(alias=HEADER, description="Retry-safe key (24 hours).")]
#: How a route answers a problem (`problems.response`, or `problems.outcome` on FHIR).
Answer = Callable[[dict[str, Any], dict[str, str] | None], Response]


def request_hash(method: str, path: str, body: Any, condition: str | None, role: str) -> str:
    """What makes two requests "the same": method, path, body, the precondition header
    (`If-Match`, `If-None-Exist`) and the role acted in."""
    text = json.dumps([method, path, body, condition, role], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_once(
    store: Store,
    principal: str,
    key: str,
    fingerprint: str,
    run: Callable[[], Response],
    answer: Answer = problems.response,
) -> Response:
    """`run()` once per (principal, key); its response again for a retry of the same request
    (a request without a key just runs: the route does not come here). The problems of
    this module, and an engine error `run()` raises, are answered with `answer`."""
    if not key or len(key) > MAX_KEY or not key.isprintable():
        malformed = f"{HEADER}: 1 to 255 printable characters"
        return answer(problems.problem(problems.BAD_REQUEST, malformed), None)
    now = utcnow()
    with store.write() as tx:
        if not requests.claim_key(tx, principal, key, fingerprint, now):
            found = requests.key(tx, principal, key)
            assert found is not None
            expired = found["created_at"] <= now - KEPT or found["status"] == -1
            abandoned = found["status"] is None and found["created_at"] <= now - ABANDONED
            if expired or abandoned:
                if not requests.reclaim_key(tx, principal, key, fingerprint, now, found["created_at"]):
                    return _in_progress(answer)
            elif found["request_hash"] != fingerprint:
                detail = f"{HEADER} was used for another request in the last 24 hours: use a new key"
                return answer(problems.problem(problems.IDEMPOTENCY_MISMATCH, detail), None)
            elif found["status"] is None:
                return _in_progress(answer)
            else:
                headers = {**(found["headers"] or {}), REPLAYED: "true"}
                media = headers.pop("content-type", "application/json")
                return Response(found["body"], status_code=found["status"], headers=headers, media_type=media)
    try:
        response = run()
    except PathwayError as exc:
        response = answer(problems.problem_of(exc), None)
    except Exception:
        with store.write() as tx:
            requests.release_key(tx, principal, key, utcnow())
        raise
    with store.write() as tx:
        if response.status_code >= 500:
            requests.release_key(tx, principal, key, utcnow())
        else:
            kept = {k: v for k, v in response.headers.items() if k in ("content-type", "etag", "location")}
            body = bytes(response.body).decode()
            requests.finish_key(tx, principal, key, response.status_code, kept, body)
    return response


def _in_progress(answer: Answer) -> Response:
    detail = f"a request with this {HEADER} is still running: retry in a moment"
    return answer(problems.problem(problems.IDEMPOTENCY_IN_PROGRESS, detail), {"Retry-After": "1"})
