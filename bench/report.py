"""Benchmark: the bottleneck report over a large event log, beside one full scan.

    python bench/report.py [--events 1000000]

Builds a log of about `--events` events (about a tenth as many enrollments,
each a plausible journey of 8 to 12 state changes) straight into a SQLite file
with executemany (the engine's own schema), then times the bottleneck report
beside `SELECT count(*), max(effective_at) FROM events` (one full scan) and
prints the ratio (target <= 3): once as of the end of the log (the everyday
report, as of now) and once as of an earlier day (looking back, when some stays
ended after the as-of day and must be counted as open then). Each side is the
best of three warm runs.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pathway import Clinic
from pathway.store.fastpath import sqlite_time

T = TypeVar("T")

JOURNEY = [
    "referred",
    "evaluation",
    "diagnostic_block",
    "ablation",
    "recovery",
    "follow_up",
    "on_hold",
    "follow_up",
    "ablation",
    "recovery",
    "follow_up",
    "discharged",
]
TRIGGERS = {
    "evaluation": "start_evaluation",
    "diagnostic_block": "schedule_blocks",
    "ablation": "approve_ablation",
    "recovery": "perform_ablation",
    "follow_up": "begin_follow_up",
    "on_hold": "hold",
    "discharged": "discharge",
}


def build(path: Path, events: int, seed: int = 1) -> int:
    Clinic.open(f"sqlite:///{path}").close()  # the schema
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    start = datetime(2020, 1, 1, tzinfo=UTC)  # every journey ends before today
    written = enrollment = 0
    while written < events:
        enrollment += 1
        length = rng.randint(8, len(JOURNEY))
        t = start + timedelta(days=rng.randint(0, 1400))
        rows = []
        for seq, state in enumerate(JOURNEY[:length], 1):
            rows.append(
                (
                    enrollment,
                    seq,
                    "enroll" if seq == 1 else TRIGGERS.get(state, "resume"),
                    None if seq == 1 else JOURNEY[seq - 2],
                    state,
                    "bench",
                    "coordinator",
                    sqlite_time(t),
                    sqlite_time(t),
                )
            )
            t += timedelta(days=rng.randint(3, 80))
        last = rows[-1]
        closed = last[4] == "discharged"
        conn.execute(
            "INSERT INTO patients (id, identifier, created_at) VALUES (?, ?, ?)",
            (enrollment, f"B{enrollment:07d}", rows[0][7]),
        )
        conn.execute(
            "INSERT INTO enrollments (id, patient_id, pathway_id, pathway_version, profile, state, "
            "entered_state_at, opened_at, closed_at, last_event_at, last_seq, version) "
            "VALUES (?, ?, 'cervical-neurotomy', 1, 'medicare', ?, ?, ?, ?, ?, ?, 1)",
            (
                enrollment,
                enrollment,
                last[4],
                last[7],
                rows[0][7],
                last[7] if closed else None,
                last[7],
                len(rows),
            ),
        )
        conn.executemany(
            "INSERT INTO events (enrollment_id, seq, trigger, from_state, to_state, actor, role, "
            "effective_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        written += len(rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return enrollment


def best_of(times: int, run: Callable[[], T]) -> tuple[float, T]:
    """The fastest of several runs (both sides warm, so the ratio compares work, not cache)."""
    best, result = float("inf"), None
    for _ in range(times):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    assert result is not None
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.db"
        began = time.perf_counter()
        enrollments = build(path, args.events)
        print(
            f"built {args.events:,}+ events for {enrollments:,} enrollments "
            f"in {time.perf_counter() - began:.1f} s"
        )
        with Clinic.open(f"sqlite:///{path}") as clinic:
            with clinic.store.engine.connect() as conn:
                scan, (_, last) = best_of(
                    3, lambda: conn.exec_driver_sql("SELECT count(*), max(effective_at) FROM events").one()
                )
            end = datetime.fromisoformat(last).replace(tzinfo=UTC)
            print(f"  full scan of events (best of 3):           {scan:6.3f} s")
            for label, as_of in (
                ("as of the end of the log", end),
                ("a month before the end", end - timedelta(days=30)),
                ("as of 2023-06-01 (mid-log)", datetime(2023, 6, 1, tzinfo=UTC)),
            ):
                took, report = best_of(3, lambda as_of=as_of: clinic.report_bottlenecks(as_of=as_of))
                print(
                    f"  bottleneck report, {label + ':':33s} {took:6.3f} s   "
                    f"ratio {took / scan:4.1f}   (target <= 3)"
                )
                print(f"    {report.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
