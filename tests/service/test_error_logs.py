"""A request that fails inside the service (500) leaves a JSON log line that says what
failed and where (code locations), never the exception's message, which may quote
personal data; the caller gets a problem that points to the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pathway import Clinic
from pathway.api.app import create_app
from pathway.api.server import JsonFormatter


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pathway.api")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_an_internal_error_is_logged_with_where_not_what(tmp_path: Path, log_lines: io.StringIO) -> None:
    with Clinic.open(f"sqlite:///{tmp_path / 'p.db'}") as clinic:
        clinic.identities.add_user("cora", ["coordinator"])
        token = clinic.identities.create_token("cora")["token"]

        def broken(*_a: object, **_k: object) -> object:
            raise RuntimeError("patient MRN-SECRET-9 broke it")

        clinic.status = broken  # type: ignore[method-assign]
        transport = httpx.ASGITransport(app=create_app(clinic), raise_app_exceptions=False)

        async def ask() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await client.get(
                    "/v1/patients/MRN-SECRET-9", headers={"Authorization": f"Bearer {token}"}
                )

        answer = asyncio.run(ask())
    assert answer.status_code == 500
    assert answer.json()["type"] == "urn:pathway:problem:internal"
    assert "MRN-SECRET-9" not in answer.text
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (failed,) = [line for line in lines if line.get("event") == "internal_error"]
    assert failed["error"] == "RuntimeError" and failed["level"] == "error"
    assert any("test_error_logs.py" in w and "broken" in w for w in failed["where"]), failed
    assert any(w.startswith("pathway/api/patients.py:") for w in failed["where"]), failed
    assert "MRN-SECRET-9" not in log_lines.getvalue()
