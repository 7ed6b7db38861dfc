"""`pathway serve --pin-cpus`: every worker keeps to one core, workers to different
cores while there are cores enough, and the service works as without it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import PG_URL, _pg_database
from tests.service.conftest import enroll, make_server, worker_pids

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")


def allowed_cores(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))


def test_one_worker_keeps_to_one_core(tmp_path: Path) -> None:
    server = make_server(f"sqlite:///{tmp_path / 'pathway.db'}", tmp_path, "--pin-cpus")
    try:
        assert server.process is not None
        cores = allowed_cores(server.process.pid)
        assert len(cores) == 1 and cores <= allowed_cores(0)
        with server.client("cora") as cora:
            enroll(cora, "PIN-1")
            assert cora.get("/v1/patients/PIN-1").status_code == 200
    finally:
        assert server.stop() == 0
    assert '"event": "pinned"' in (tmp_path / "serve.log").read_text()


@pytest.mark.postgres
def test_workers_keep_to_different_cores(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    for url in _pg_database():
        server = make_server(url, tmp_path, "--workers", "2", "--pin-cpus")
        try:
            # The first worker to start answers while the second may still be starting:
            # its app (and with it its core) comes when it has loaded.
            deadline = time.monotonic() + 30
            while True:
                pinned = [allowed_cores(pid) for pid in worker_pids(server)]
                if len(pinned) == 2 and all(len(c) == 1 for c in pinned):
                    break
                assert time.monotonic() < deadline, pinned
                time.sleep(0.1)
            if len(allowed_cores(0)) >= 2:
                assert pinned[0] != pinned[1], pinned
            with server.client("cora") as cora:
                for n in range(6):
                    enroll(cora, f"PIN-W{n}")
        finally:
            assert server.stop() == 0
