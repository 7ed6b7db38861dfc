"""Benchmark: importing referrals from CSV.

    python bench/import.py [--rows 100000]

Times `pathway import referrals` (through `Clinic.import_referrals`: read the
CSV, validate every row, enroll in batches: patients, enrollments, enroll events
and outbox messages) beside a bare sqlite3 `executemany` that inserts the same
CSV rows into one table, with the same durability settings, and prints the
ratio of their rates (target >= 0.3). A second line compares with executemany
of the rows an import actually writes (patient, enrollment, event, outbox),
built beforehand, into the same schema; a third, the same into the schema with no
secondary index and no foreign keys: a floor no import of those rows can beat.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from pathway import Clinic


def write_csv(path: Path, rows: int) -> None:
    start = date(2025, 1, 1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient", "referred_at", "pathway", "profile", "name"])
        for i in range(rows):
            pathway = "cervical-neurotomy" if i % 3 else "lumbar-neurotomy"
            profile = "consensus" if i % 5 == 0 else ""
            writer.writerow(
                [
                    f"R{i:07d}",
                    (start + timedelta(days=i % 600)).isoformat(),
                    pathway,
                    profile,
                    f"Patient {i}" if i % 2 else "",
                ]
            )


def baseline(path: Path, csv_path: Path) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(
        "CREATE TABLE referrals (patient TEXT UNIQUE, referred_at TEXT, pathway TEXT, "
        "profile TEXT, name TEXT)"
    )
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO referrals VALUES (?, ?, ?, ?, ?)", reader)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def baseline_four_tables(folder: Path, csv_path: Path, *, floor: bool = False) -> float:
    """The rows an import writes (patient, enrollment, enroll event, outbox message), built
    first, then inserted with bare executemany into the same schema. With `floor`, the
    schema has no secondary index and foreign keys are off: what no import of these rows
    can beat."""
    import json
    import uuid
    from datetime import UTC, datetime

    name = "floor.db" if floor else "four.db"
    url = f"sqlite:///{folder / name}"
    Clinic.open(url).close()  # the same schema, indexes and triggers
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    patients = [(r[0], r[4] or None, now) for r in rows]
    enrollments = [
        (
            i + 1,
            r[2],
            1,
            r[3] or "medicare",
            "referred",
            r[1] + " 00:00:00.000000",
            r[1] + " 00:00:00.000000",
            r[1] + " 00:00:00.000000",
            1,
            1,
        )
        for i, r in enumerate(rows)
    ]
    events = [(i + 1, 1, "enroll", "referred", "bench", "coordinator", r[1], now) for i, r in enumerate(rows)]
    messages = [
        (
            str(uuid.uuid4()),
            "enrollment.opened",
            i + 1,
            json.dumps({"patient": r[0], "trigger": "enroll"}),
            now,
        )
        for i, r in enumerate(rows)
    ]
    conn = sqlite3.connect(folder / name, isolation_level=None)
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=OFF" if floor else "foreign_keys=ON",
        "synchronous=FULL",
    ):
        conn.execute(f"PRAGMA {pragma}")
    if floor:
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        for (index,) in indexes.fetchall():
            conn.execute(f"DROP INDEX {index}")
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO patients (identifier, display_name, created_at) VALUES (?,?,?)", patients)
    conn.executemany(
        "INSERT INTO enrollments (patient_id, pathway_id, pathway_version, profile, state, "
        "entered_state_at, opened_at, last_event_at, last_seq, version) VALUES (?,?,?,?,?,?,?,?,?,?)",
        enrollments,
    )
    conn.executemany(
        "INSERT INTO events (enrollment_id, seq, trigger, to_state, actor, role, effective_at, "
        "recorded_at) VALUES (?,?,?,?,?,?,?,?)",
        events,
    )
    conn.executemany(
        "INSERT INTO outbox (message_id, type, enrollment_id, payload, created_at, "
        "attempts) VALUES (?,?,?,?,?,0)",
        messages,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / "referrals.csv"
        write_csv(csv_path, args.rows)
        theirs = baseline(folder / "baseline.db", csv_path)
        four = baseline_four_tables(folder, csv_path)
        floor = baseline_four_tables(folder, csv_path, floor=True)
        url = f"sqlite:///{folder / 'pathway.db'}"
        with Clinic.open(url, actor="bench", role="coordinator") as clinic:
            start = time.perf_counter()
            report = clinic.import_referrals(csv_path)
            ours = time.perf_counter() - start
            assert report.imported == args.rows, report.to_dict()
            start = time.perf_counter()
            again = clinic.import_referrals(csv_path)
            rerun = time.perf_counter() - start
            assert again.imported == 0 and again.already_enrolled == args.rows
    print(f"import: {args.rows:,} referral rows")
    print(f"  pathway import referrals:  {args.rows / ours:10,.0f} rows/s ({ours:.2f} s)")
    print(f"  bare sqlite3 executemany:  {args.rows / theirs:10,.0f} rows/s ({theirs:.2f} s)")
    print(f"  ratio pathway / sqlite3:   {theirs / ours:10.2f}   (target >= 0.3)")
    print(
        f"  executemany of the rows an import writes (4 tables, rows prebuilt): "
        f"{args.rows / four:,.0f} rows/s; ratio {four / ours:.2f}"
    )
    print(
        f"  the same with no secondary index and no foreign keys (a floor): {args.rows / floor:,.0f} rows/s;"
        f" ratio to sqlite3 {theirs / floor:.2f}, the most any import of these rows could reach"
    )
    print(f"  re-running the same file:  {rerun:.2f} s, nobody enrolled twice")
    return 0


if __name__ == "__main__":
    sys.exit(main())
