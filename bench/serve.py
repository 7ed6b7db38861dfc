"""Benchmark: advances per second through the clinic service's HTTP API beside in-process
`Clinic.advance`, on the same PostgreSQL database.

    python bench/serve.py [--url postgresql://postgres@127.0.0.1:5432/test] [--patients 200]
                          [--rounds 2] [--clients 8] [--workers CORES] [--pin]
                          [--client raw|stdlib|httpx] [--pairs 7]

Makes a fresh database beside the one `--url` names (dropped afterwards), enrolls
2 x `--patients` patients, and moves each through `hold` (with a reason) and `resume`,
`--rounds` times a measurement: half the patients in process (`--clients` threads on one
Clinic, as the service runs its routes in a thread pool), the other half through `pathway
serve` with `--clients` client processes, each on one keep-alive connection
(`serve_clients.py`: by default requests written as bytes on a socket, since the clients
share the machine with the server and what they cost is taken from it; `--client stdlib`
or `httpx` for the clients an integrator would write). The service runs `--workers`
processes, by default one a core, as a service on PostgreSQL is deployed; `--workers 1`
shows one process each side, where one interpreter lock is the limit. After one
unmeasured round each way (to warm the pools and the prepared statements) the two
alternate, `--pairs` times; it prints each pair's rates and ratio, the median ratio
(target >= 0.5) and the HTTP latency (p50, p99). Nothing is asserted: the
machine is shared, so read the ratio, measured in one run.

On Linux, with PostgreSQL on this machine, it also prints the CPU an advance costs each
way (median of the pairs, from /proc): in process, this process and the database's
server processes; through HTTP, the service's processes, the clients and the database.
That steadier figure says where the time goes when the cores are shared: the ratio of
the two totals is what the advances per second tend to when the machine is the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import create_engine, text

from pathway import Clinic

sys.path.insert(0, str(Path(__file__).parent))

from serve_clients import CLIENTS


def fresh_database(url: str) -> tuple[str, str]:
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"pathway_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name, name


def drop_database(url: str, name: str) -> None:
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


T = TypeVar("T")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def children(pid: int) -> list[int]:
    """`pid` and its child processes (the service's workers)."""
    found = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def database_pids(url: str) -> list[int]:
    """The server processes serving the bench database now (when PostgreSQL runs here)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            query = (
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            pids = [int(p) for p in conn.execute(text(query)).scalars()]
    finally:
        engine.dispose()
    return [p for p in pids if Path(f"/proc/{p}").exists()]


class Cpu:
    """CPU per advance of each side, from /proc (Linux with the database on this machine)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def measure(self, parts: dict[str, list[int]], run: Callable[[], T], steps: int) -> T:
        before = {name: cpu_seconds(pids) for name, pids in parts.items()}
        result = run()
        for name, pids in parts.items():
            self.samples.setdefault(name, []).append((cpu_seconds(pids) - before[name]) / steps * 1000)
        return result

    def line(self, names: list[str]) -> str:
        medians = [statistics.median(self.samples[n]) for n in names]
        parts = " + ".join(f"{n.split(' ', 1)[1]} {m:.2f}" for n, m in zip(names, medians, strict=True))
        return f"{parts} = {sum(medians):.2f} ms"


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def split(items: list[str], parts: int) -> list[list[str]]:
    return [items[i::parts] for i in range(parts)]


def in_process(clinic: Clinic, patients: list[str], rounds: int, clients: int, pin: bool = False) -> float:
    """Seconds for `clients` threads to advance `patients`; with `pin`, the threads keep to
    one core (as `serve --pin-cpus` keeps a worker), and this process is free again after."""

    def work(mine: list[str]) -> None:
        for _ in range(rounds):
            for p in mine:
                clinic.advance(p, "hold", reason="bench")
                clinic.advance(p, "resume")

    free = os.sched_getaffinity(0) if pin else None
    if free:
        os.sched_setaffinity(0, {min(free)})  # the pool's threads, made below, inherit it
    try:
        with ThreadPoolExecutor(clients) as pool:
            began = time.perf_counter()
            list(pool.map(work, split(patients, clients)))
            return time.perf_counter() - began
    finally:
        if free:
            os.sched_setaffinity(0, free)


class Service:
    """`pathway serve` on the bench database with `clients` client processes connected to
    it, each on one keep-alive connection; `measure()` runs one round of them all."""

    def __init__(
        self,
        db: str,
        patients: list[str],
        rounds: int,
        clients: int,
        workers: int,
        client: str,
        options: tuple[str, ...] = (),
    ):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with Clinic.open(db) as clinic:  # a user of its own: several services may share the database
            user = f"bench-{port}"
            clinic.identities.add_user(user, ["coordinator"])
            token = clinic.identities.create_token(user)["token"]
        url = f"http://127.0.0.1:{port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-serve-{port}.log"
        self.server = subprocess.Popen(
            [sys.executable, "-c", "from pathway_cli.main import main; main()", "serve", "--port", str(port),
             "--workers", str(workers), *options],
            env={**os.environ, "PATHWAY_DB": db},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.clients: list[subprocess.Popen[str]] = []
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.server.poll() is not None:
                self.close()
                sys.exit(f"the server did not start: {self.log.read_text()}")
            time.sleep(0.1)
        self.clients = [
            subprocess.Popen(
                [sys.executable, "-c", client, url, token, str(rounds), ",".join(mine)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for mine in split(patients, clients)
        ]
        for p in self.clients:  # every client started, imported and connected before any clock starts
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def measure(self) -> tuple[float, list[float]]:
        began = time.perf_counter()
        for p in self.clients:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        latencies: list[float] = []
        for p in self.clients:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                self.close()
                sys.exit("a client failed")
            latencies += json.loads(line)
        return time.perf_counter() - began, latencies

    def close(self) -> None:
        for p in self.clients:
            if p.poll() is None:
                assert p.stdin is not None
                p.stdin.close()
                p.wait(timeout=30)
        self.server.terminate()
        self.server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("PATHWAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--workers",
        type=int,
        default=cores(),
        help="service worker processes (default: one a core this process may use, as a service on "
        "PostgreSQL is run; the in-process side is one process whatever this says)",
    )
    parser.add_argument(
        "--client",
        choices=tuple(CLIENTS),
        default="raw",
        help="how the clients speak HTTP: raw (bytes on a socket, about 0.05 ms of CPU a request), "
        "stdlib (http.client, about 0.17 ms) or httpx (about 1 ms); on a small machine what the "
        "clients cost is taken from the server",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=7,
        help="measurements each way, alternating in process and HTTP; the ratio is the median of "
        "the pairs' (the machine's load drifts)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="keep each side to its cores: the service with --pin-cpus (a worker a core), the "
        "in-process threads to one core (Linux)",
    )
    args = parser.parse_args()
    db, name = fresh_database(args.url)
    service: Service | None = None
    try:
        local = [f"L{i:05d}" for i in range(args.patients)]
        remote = [f"H{i:05d}" for i in range(args.patients)]
        with Clinic.open(db, actor="bench", role="coordinator") as clinic:
            with clinic.batch():
                for p in local + remote:
                    clinic.enroll(p, "cervical-neurotomy", at="2026-06-01")
            client = CLIENTS[args.client]
            options = ("--pin-cpus",) if args.pin else ()
            service = Service(db, remote, args.rounds, args.clients, args.workers, client, options)
            steps = args.patients * args.rounds * 2
            print(
                f"serve: {steps:,} advances each way per measurement, {args.clients} {args.client} clients, "
                f"{args.workers} worker(s), PostgreSQL{', each side kept to its cores' if args.pin else ''}"
            )
            # Warm both: pools, prepared statements.
            in_process(clinic, local, args.rounds, args.clients, args.pin)
            service.measure()
            ratios: list[float] = []
            latencies: list[float] = []
            cpu = Cpu()
            database = database_pids(db)
            here = {"this process": [os.getpid()], "database": database}
            there = {
                "service": children(service.server.pid),
                "clients": [p.pid for p in service.clients],
                "database": database,
            }
            for pair in range(1, args.pairs + 1):
                mine = cpu.measure(
                    {f"in {k}": v for k, v in here.items()},
                    lambda: in_process(clinic, local, args.rounds, args.clients, args.pin),
                    steps,
                )
                theirs, more = cpu.measure({f"http {k}": v for k, v in there.items()}, service.measure, steps)
                latencies += more
                ratios.append(mine / theirs)
                print(
                    f"  pair {pair}: in process ({args.clients} threads) {steps / mine:5.0f} advances/s, "
                    f"through HTTP {steps / theirs:5.0f} advances/s, ratio {mine / theirs:.2f}"
                )
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        median = statistics.median(ratios)
        print(f"  ratio HTTP / in process, median of {len(ratios)}: {median:.2f}   (target >= 0.5)")
        print(f"  HTTP latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        if database and Path(f"/proc/{os.getpid()}/stat").exists():
            print("  CPU an advance costs (median of the pairs):")
            print("    in process:   " + cpu.line([f"in {k}" for k in here]))
            print("    through HTTP: " + cpu.line([f"http {k}" for k in there]))
    finally:
        if service is not None:
            service.close()
        drop_database(args.url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
