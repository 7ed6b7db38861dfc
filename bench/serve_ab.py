"""Benchmark: two `pathway serve` processes on one PostgreSQL database, the second with
other options, measured in turn, to tell an option's effect from the machine's drift.

    python bench/serve_ab.py --b=--pin-cpus [--a=OPTIONS] [--workers 1] [--rounds 8]
                             [--patients 150] [--clients 8] [--client raw|stdlib|httpx]
                             [--url postgresql://...]

Each service gets its own patients and `--clients` keep-alive client processes (as
`bench/serve.py`); the two are measured alternately (A B, then B A, ...) `--rounds`
times. It prints each one's advances per second and the CPU its processes took an
advance (from /proc), and the median of B's CPU over A's. Give `--a` the same options as
`--b` once to see how far two equal services differ on this machine (the resolution).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from serve import Service, children, cpu_seconds, drop_database, fresh_database
from serve_clients import CLIENTS

from pathway import Clinic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("PATHWAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--a", default="", help="options of service A (default: none)")
    parser.add_argument(
        "--b", required=True, help="options of service B, e.g. --b=--pin-cpus (with =: options start with -)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--client", choices=tuple(CLIENTS), default="raw", help="as bench/serve.py's")
    args = parser.parse_args()
    db, name = fresh_database(args.url)
    services: dict[str, Service] = {}
    try:
        mine = {k: [f"{k}{i:05d}" for i in range(args.patients)] for k in "AB"}
        with Clinic.open(db, actor="bench", role="coordinator") as clinic, clinic.batch():
            for p in mine["A"] + mine["B"]:
                clinic.enroll(p, "cervical-neurotomy", at="2026-06-01")
        for k, options in (("A", args.a), ("B", args.b)):
            options_of = tuple(shlex.split(options))
            client = CLIENTS[args.client]
            services[k] = Service(db, mine[k], 2, args.clients, args.workers, client, options_of)
            services[k].measure()  # warm: pools, prepared statements
        steps = args.patients * 2 * 2
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        rate: dict[str, list[float]] = {"A": [], "B": []}
        for turn in range(args.rounds):
            for k in "AB" if turn % 2 == 0 else "BA":
                pids = children(services[k].server.pid)
                before = cpu_seconds(pids)
                seconds, _ = services[k].measure()
                cpu[k].append((cpu_seconds(pids) - before) / steps * 1000)
                rate[k].append(steps / seconds)
        each = f"{args.clients} clients, {args.workers} worker(s)"
        print(f"serve A/B: {steps:,} advances a measurement, {each}")
        for k, options in (("A", args.a), ("B", args.b)):
            rates = ", ".join(f"{r:.0f}" for r in rate[k])
            print(
                f"  {k} ({options or 'no options'}): {statistics.median(rate[k]):.0f} advances/s "
                f"(median; {rates}), service CPU {statistics.median(cpu[k]):.2f} ms an advance"
            )
        ratios = [b / a for a, b in zip(cpu["A"], cpu["B"], strict=True) if a]
        median = statistics.median(ratios)
        print(f"  B's CPU an advance over A's, median of {len(ratios)} turns: {median:.3f}")
    finally:
        for service in services.values():
            service.close()
        drop_database(args.url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
