"""Several worker processes against PostgreSQL: requests spread over them, changes land
once, idempotency keys hold across workers, /metrics sums every worker's counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, _pg_database
from tests.service.conftest import Server, enroll, make_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    tmp: Path = tmp_path_factory.mktemp("workers")
    for url in _pg_database():
        found = make_server(url, tmp, "--workers", "2")
        try:
            yield found
        finally:
            assert found.stop() == 0


def test_two_workers_share_the_work_and_the_keys(workers: Server) -> None:
    with workers.client("cora") as cora:
        for i in range(12):
            enroll(cora, f"WK-{i}")
        headers = {"Idempotency-Key": "workers-1", "Authorization": f"Bearer {workers.tokens['cora']}"}
        answers = [  # a new connection each time: either worker may take it
            httpx.post(
                workers.url + "/v1/patients/WK-0/transitions",
                json={"trigger": "start_evaluation"},
                headers=headers,
            )
            for _ in range(6)
        ]
        assert {a.status_code for a in answers} == {200}
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5
        history = cora.get("/v1/patients/WK-0/history").json()
        assert [e["trigger"] for e in history] == ["enroll", "start_evaluation"]
    metrics = ""
    for _ in range(3):  # any worker answers /metrics with every worker's counts
        metrics = httpx.get(workers.url + "/metrics").text
    assert workers.log is not None
    assert len(set(re.findall(r"Started server process \[(\d+)\]", workers.log.read_text()))) == 2
    created = re.search(r'pathway_changes_total\{kind="enroll"\} (\d+(\.\d+)?)', metrics)
    assert created is not None and float(created.group(1)) == 12
