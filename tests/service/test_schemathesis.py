"""Schemathesis over the OpenAPI document, against the running service: no 5xx, every
response's status, content type and body as the document says, input it rules out
refused, 405 with `Allow`, and no operation that names the bearer scheme answering
without credentials."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import Server


def test_every_operation_answers_as_documented(fresh_server: Server, tmp_path: Path) -> None:
    command = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    args = [
        command,
        "run",
        f"{fresh_server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fresh_server.tokens['cora']}",
        "--checks",
        ",".join(
            (
                "not_a_server_error",
                "status_code_conformance",
                "content_type_conformance",
                "response_schema_conformance",
                "negative_data_rejection",  # input the document rules out is refused
                "missing_required_header",
                "unsupported_method",  # 405 with Allow
                "ignored_auth",  # an operation that names the bearer scheme refuses without it
            )
        ),
        "--max-examples",
        "6",
        "--seed",
        "20261203",
        "--report-dir",
        str(tmp_path),
    ]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"}
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout
