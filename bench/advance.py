"""Benchmark: advancing patients, each step one durable transaction.

    python bench/advance.py [--patients 300] [--memory-enrollments 100000]

Part 1 advances N patients through the guarded steps of the cervical pathway
(start_evaluation, schedule_blocks with the eligibility guard, approve_ablation
with the two-block guard, perform_ablation with the safety guard) through
`Clinic.advance`, beside hand-written sqlite3 doing the same reads (patient,
enrollments, observations, events) and writes (enrollment row, event, outbox
message) with the same durability settings (WAL, synchronous=FULL), and prints
both rates and the ratio (target >= 0.5).

Part 2 advances M enrollments one step each and prints the process's peak
memory at intervals: it should stay flat (one machine per pathway version,
no per-patient state kept).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pathway import Clinic

PATHWAY = "cervical-neurotomy"
STEPS = [
    ("start_evaluation", "2026-01-12"),
    ("schedule_blocks", "2026-01-20"),
    ("approve_ablation", "2026-02-18"),
    ("perform_ablation", "2026-03-10"),
]
# Which steps' guards read observations and events (start_evaluation has no guard).
READS_OBSERVATIONS = {"schedule_blocks", "approve_ablation", "perform_ablation"}
READS_EVENTS = {"perform_ablation"}
SAFETY = {
    "anticoagulant": False,
    "anticoagulant_plan": False,
    "implanted_device": "none",
    "device_plan": False,
    "pregnant": False,
    "site_infection": False,
}


def block(agent: str, post: int, hours: float) -> dict[str, object]:
    return {
        "side": "right",
        "levels": ["C4-5", "C5-6"],
        "agent": agent,
        "guidance": "fluoroscopy",
        "sedation": "none",
        "pre_nrs": 7,
        "post_nrs": post,
        "relief_hours": hours,
    }


def prepare(clinic: Clinic, n: int) -> list[str]:
    """Enroll n patients and record what their guards need (not timed)."""
    patients = []
    for i in range(n):
        p = f"B{i:06d}"
        clinic.enroll(p, PATHWAY, at="2026-01-05")
        clinic.record(
            p,
            "baseline",
            {
                "onset_date": "2025-05-01",
                "nrs": 7,
                "ndi": 22,
                "axial_predominant": True,
                "radiculopathy": "none",
                "red_flags": [],
            },
            at="2026-01-12",
        )
        clinic.record(
            p,
            "conservative_care",
            {"modality": "physiotherapy", "weeks": 8, "outcome": "failed"},
            at="2026-01-12",
        )
        clinic.record(p, "block", block("lidocaine", 1, 2), at="2026-01-27")
        clinic.record(p, "block", block("bupivacaine", 0, 6), at="2026-02-17")
        clinic.record(p, "safety", SAFETY, at="2026-03-10")
        clinic.record(
            p,
            "ablation",
            {
                "side": "right",
                "levels": ["C4-5", "C5-6"],
                "technique": "thermal",
                "guidance": "fluoroscopy",
            },
            at="2026-03-10",
        )
        patients.append(p)
    return patients


def run_pathway(clinic: Clinic, patients: list[str]) -> float:
    start = time.perf_counter()
    for trigger, at in STEPS:
        for p in patients:
            clinic.advance(p, trigger, at=at)
    return time.perf_counter() - start


def run_sqlite3(path: Path, patients: list[str]) -> float:
    """The same reads and writes by hand: the floor an ORM-free engine could reach."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=FULL"):
        conn.execute(f"PRAGMA {pragma}")
    start = time.perf_counter()
    for trigger, at in STEPS:
        for p in patients:
            now = datetime.now(UTC).isoformat(" ")
            conn.execute("BEGIN IMMEDIATE")
            enr = conn.execute(
                "SELECT e.*, p.identifier, p.display_name FROM enrollments e "
                "JOIN patients p ON p.id = e.patient_id WHERE p.identifier = ? "
                "ORDER BY e.opened_at, e.id",
                (p,),
            ).fetchall()
            pid = enr[-1][1]
            eid, version, seq, state = enr[-1][0], enr[-1][12], enr[-1][11], enr[-1][5]
            head = enr[-1][13]
            # The same reads the engine makes for this step: guards load what they read.
            if trigger in READS_OBSERVATIONS:
                obs = conn.execute(
                    "SELECT * FROM observations WHERE enrollment_id IN "
                    "(SELECT id FROM enrollments WHERE patient_id = ?) AND entered_in_error = 0 "
                    "ORDER BY effective_at, id",
                    (pid,),
                ).fetchall()
                [json.loads(o[3]) for o in obs]
            if trigger in READS_EVENTS:
                conn.execute(
                    "SELECT * FROM events WHERE enrollment_id IN "
                    "(SELECT id FROM enrollments WHERE patient_id = ?) "
                    "ORDER BY effective_at, enrollment_id, seq",
                    (pid,),
                ).fetchall()
            # As the engine: the event first (chained: SHA-256 of the previous head and the
            # entry), then the enrollment, which the database lets change only with it.
            entry = json.dumps([head, p, trigger, state, seq + 1, at, now], separators=(",", ":"))
            digest = hashlib.sha256(entry.encode()).hexdigest()
            conn.execute(
                "INSERT INTO events (enrollment_id, seq, trigger, from_state, to_state, actor, role, "
                "effective_at, recorded_at, reason, payload, chain_seq, hash) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    eid,
                    seq + 1,
                    trigger,
                    state,
                    trigger,
                    "bench",
                    "physician",
                    at,
                    now,
                    None,
                    None,
                    version + 1,
                    digest,
                ),
            )
            cur = conn.execute(
                "UPDATE enrollments SET state=?, held_from=NULL, entered_state_at=?, closed_at=NULL, "
                "last_event_at=?, last_seq=?, version=?, chain_head=? WHERE id=? AND version=?",
                (trigger, at, at, seq + 1, version + 1, digest, eid, version),
            )
            assert cur.rowcount == 1
            conn.execute(
                "INSERT INTO outbox (message_id, type, enrollment_id, payload, created_at, attempts) "
                "VALUES (?,?,?,?,?,0)",
                (
                    str(uuid.uuid4()),
                    "enrollment.transitioned",
                    eid,
                    json.dumps({"trigger": trigger, "patient": p}),
                    now,
                ),
            )
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_run(folder: Path, total: int) -> None:
    """Advance `total` enrollments one step each; print peak RSS as it goes."""
    url = f"sqlite:///{folder / 'memory.db'}"
    db = sqlite3.connect(folder / "memory.db")
    with Clinic.open(url, actor="bench", role="coordinator") as clinic:
        pass  # creates the schema
    # Bulk-create the enrollments directly: part 2 measures advancing, not enrolling.
    now = "2026-01-05 00:00:00.000000"
    with db:
        db.executemany(
            "INSERT INTO patients (identifier, created_at) VALUES (?, ?)",
            ((f"M{i:07d}", now) for i in range(total)),
        )
        db.execute(
            "INSERT INTO enrollments (patient_id, pathway_id, pathway_version, profile, state, "
            "entered_state_at, opened_at, last_event_at, last_seq, version) "
            "SELECT id, ?, 1, 'medicare', 'referred', ?, ?, ?, 1, 1 FROM patients",
            (PATHWAY, now, now, now),
        )
        db.execute(
            "INSERT INTO events (enrollment_id, seq, trigger, from_state, to_state, actor, role, "
            "effective_at, recorded_at) SELECT id, 1, 'enroll', NULL, 'referred', 'bench', "
            "'coordinator', ?, ? FROM enrollments",
            (now, now),
        )
    db.close()
    checkpoints = {total // 10, total // 2, total}
    start = time.perf_counter()
    with Clinic.open(url, actor="bench", role="coordinator") as clinic:
        for i in range(total):
            clinic.advance(f"M{i:07d}", "start_evaluation", at="2026-01-12")
            if i + 1 in checkpoints:
                print(
                    f"  after {i + 1:>7,} advances: peak RSS {peak_rss_mib():7.1f} MiB "
                    f"({(i + 1) / (time.perf_counter() - start):,.0f}/s)"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument(
        "--memory-enrollments",
        type=int,
        default=100_000,
        help="enrollments advanced in the memory run (0 to skip)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        urls = {}
        for name in ("pathway", "baseline"):
            urls[name] = f"sqlite:///{folder / (name + '.db')}"
            with Clinic.open(urls[name], actor="bench", role="physician") as clinic:
                patients = prepare(clinic, args.patients)
        with Clinic.open(urls["pathway"], actor="bench", role="physician") as clinic:
            ours = run_pathway(clinic, patients)
        theirs = run_sqlite3(folder / "baseline.db", patients)
        steps = len(STEPS) * len(patients)
        print(f"advance: {steps} durable transactions ({len(patients)} patients x {len(STEPS)} steps)")
        print(f"  pathway (Clinic.advance):   {steps / ours:8.0f} advances/s")
        print(f"  hand-written sqlite3:       {steps / theirs:8.0f} advances/s")
        print(f"  ratio pathway / sqlite3:    {theirs / ours:8.2f}   (target >= 0.5)")
        if args.memory_enrollments:
            print(f"memory: advancing {args.memory_enrollments:,} enrollments one step each")
            memory_run(folder, args.memory_enrollments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
