"""Benchmark: `simulate` in staged batches beside the same commands one by one.

    python bench/simulate.py [--patients 2000] [--seed 1] [--database-url URL]

Both runs make the same cohort (same seed) through `Clinic.enroll`, `record` and
`advance` into fresh databases: once as `simulate` does it (staged batches of
500 patients, written with one executemany per table at the end of each), once
with `staged=False` (each command against the database, in ordinary batches).
Prints both times, patients per second and the ratio. SQLite by default; with
--database-url (PostgreSQL) each run gets a fresh database on that server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathway import Clinic
from pathway.service.simulate import simulate
from pathway.store.database import normalize_url


@contextmanager
def fresh_database(server: str | None, folder: Path, name: str) -> Iterator[str]:
    if server is None:
        yield f"sqlite:///{folder / name}.db"
        return
    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    database = f"pathway_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield f"{normalize_url(server).rpartition('/')[0]}/{database}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, patients: int, seed: int, *, staged: bool) -> tuple[float, int]:
    with Clinic.open(url, actor="bench") as clinic:
        start = time.perf_counter()
        outcomes = simulate(clinic, patients, seed=seed, until=date(2026, 11, 1), staged=staged)
        return time.perf_counter() - start, sum(outcomes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite files)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = {}
        for staged in (True, False):
            name = "staged" if staged else "one-by-one"
            with fresh_database(args.database_url, Path(folder), name) as url:
                seconds, made = run(url, args.patients, args.seed, staged=staged)
            times[name] = seconds
            print(f"{name:>11}: {made} patients in {seconds:.2f} s ({made / seconds:,.0f}/s)")
    print(f"staged is {times['one-by-one'] / times['staged']:.1f}x faster")


if __name__ == "__main__":
    main()
