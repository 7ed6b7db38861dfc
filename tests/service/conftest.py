"""A real `pathway serve` process on localhost, on a SQLite file and (when configured) a
fresh PostgreSQL database, with users and tokens made the way an administrator makes them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pathway import Clinic
from tests.conftest import PG_URL, _pg_database

USERS = {
    "cora": ("coordinator",),
    "phil": ("physician",),
    "mara": ("coordinator", "physician"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pathway_cli(*args: str, db: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATHWAY_DB": db}
    return subprocess.run(
        [sys.executable, "-c", "from pathway_cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def pathway_here(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    """`pathway_cli` in this process (click's runner): the same output and exit code,
    without a new interpreter per command."""
    from click.testing import CliRunner

    from pathway_cli.main import cli

    result = CliRunner().invoke(cli, list(args), env={"PATHWAY_DB": db})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@dataclass
class Server:
    db: str
    port: int
    process: subprocess.Popen[str] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.log is not None
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from pathway_cli.main import main; main()",
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env={**os.environ, "PATHWAY_DB": self.db},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"pathway serve exited {self.process.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("pathway serve did not answer in 60 s")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def client(self, user: str | None = "cora", role: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        if role is not None:
            headers["X-Pathway-Role"] = role
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def clinic(self) -> Clinic:
        return Clinic.open(self.db, create=False)


def worker_pids(server: Server) -> list[int]:
    """The serving processes: the workers of `--workers N`, or the one process with one worker."""
    assert server.process is not None
    main = server.process.pid
    children = [int(p) for p in Path(f"/proc/{main}/task/{main}/children").read_text().split()]
    workers = [p for p in children if "spawn_main" in cmdline(p) and "resource_tracker" not in cmdline(p)]
    return workers or [main]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def make_server(db: str, tmp: Path, *args: str) -> Server:
    with Clinic.open(db) as clinic:
        for name, roles in USERS.items():
            clinic.identities.add_user(name, roles)
        tokens = {name: clinic.identities.create_token(name)["token"] for name in USERS}
    server = Server(db, free_port(), tokens=tokens, args=args, log=tmp / "serve.log")
    server.start()
    return server


def _serving(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Server]:
    if request.param == "sqlite":
        found = make_server(f"sqlite:///{tmp / 'pathway.db'}", tmp)
        yield found
        found.stop()
        return
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    for url in _pg_database():
        found = make_server(url, tmp)
        try:
            yield found
        finally:
            found.stop()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend for the service tests (each uses patients of its own)."""
    yield from _serving(request, tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module", params=BACKENDS)
def fresh_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own for a module that needs an empty database (row ids it can
    predict) or that writes at random (schemathesis)."""
    yield from _serving(request, tmp_path_factory.mktemp("serve"))


def enroll(client: httpx.Client, patient: str, at: str = "2026-10-01") -> httpx.Response:
    response = client.post(f"/v1/patients/{patient}/enrollments", json={"at": at})
    assert response.status_code == 201, response.text
    return response


PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == f"urn:pathway:problem:{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body
