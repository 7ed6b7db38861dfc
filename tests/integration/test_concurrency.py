"""Eight processes advance, record and hold/resume the same 200 enrollments at once.

Afterwards: no lost update, no duplicate or missing sequence number, every
stored state equals the replay of its event log, and every failed attempt was
a conflict (ConcurrencyError) or a guard refusal, nothing else. `bench/stress.py`
runs the same with more operations.
"""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from typing import Any

from sqlalchemy import text

from pathway import Clinic, ConcurrencyError, GuardRefused

PATHWAY = "cervical-neurotomy"
ENROLLMENTS = 200
PROCESSES = 8
OPERATIONS = 40


def patients() -> list[str]:
    return [f"S{i:04d}" for i in range(ENROLLMENTS)]


def prepare(url: str) -> None:
    with Clinic.open(url, actor="setup", role="coordinator") as clinic:
        for patient in patients():
            clinic.enroll(patient, PATHWAY, at="2026-01-05")


def worker(url: str, seed: int, operations: int) -> dict[str, Any]:
    """Random operations on random enrollments; each one reads, then writes with the
    version it read, so a concurrent change turns into a conflict, never a lost update."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    unexpected: list[str] = []
    with Clinic.open(url, actor=f"worker{seed}", role="coordinator") as clinic:
        for _ in range(operations):
            patient = rng.choice(patients())
            try:
                status = clinic.status(patient)
                version = status.enrollment_version
                action = rng.random()
                if action < 0.3:
                    clinic.record(patient, "contact_attempt", {"outcome": "no_response"}, at="2026-02-01")
                    done["record"] += 1
                    continue
                if status.state == "referred":
                    trigger, reason = "start_evaluation", None
                elif status.state == "on_hold":
                    trigger, reason = "resume", None
                elif action < 0.7:
                    trigger, reason = "hold", "stress"
                else:
                    trigger, reason = "mark_lost", None  # refused by its guard
                clinic.advance(patient, trigger, at="2026-02-01", reason=reason, expected_version=version)
                done["advance"] += 1
            except ConcurrencyError:
                failures["conflict"] += 1
            except GuardRefused:
                failures["refused"] += 1
            except Exception as exc:  # anything else is a failure of the guarantee
                unexpected.append(repr(exc))
    return {"done": dict(done), "failures": dict(failures), "unexpected": unexpected}


def run_workers(url: str, operations: int = OPERATIONS) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        return pool.starmap(worker, [(url, seed, operations) for seed in range(PROCESSES)])


def check_invariants(url: str, results: list[dict[str, Any]]) -> None:
    assert [r["unexpected"] for r in results] == [[] for _ in results]
    advances = sum(r["done"].get("advance", 0) for r in results)
    records = sum(r["done"].get("record", 0) for r in results)
    with Clinic.open(url) as clinic, clinic.store.read() as tx:
        conn = tx.conn
        events = conn.execute(text("SELECT count(*) FROM events WHERE trigger <> 'enroll'")).scalar()
        observations = conn.execute(text("SELECT count(*) FROM observations")).scalar()
        assert (events, observations) == (advances, records), "a change was lost or doubled"
        rows = conn.execute(
            text("SELECT e.id, e.state, e.last_seq, e.version FROM enrollments e ORDER BY e.id")
        ).all()
        log = conn.execute(
            text("SELECT enrollment_id, seq, from_state, to_state FROM events ORDER BY enrollment_id, seq")
        ).all()
    by_enrollment: dict[int, list[Any]] = {}
    for event in log:
        by_enrollment.setdefault(event.enrollment_id, []).append(event)
    for row in rows:
        history = by_enrollment[row.id]
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        state = None
        for event in history:
            assert event.from_state == state
            state = event.to_state
        assert state == row.state and row.last_seq == len(history)


def test_eight_processes_on_the_same_enrollments_lose_nothing(db_url: str) -> None:
    prepare(db_url)
    results = run_workers(db_url)
    check_invariants(db_url, results)
    conflicts = sum(r["failures"].get("conflict", 0) for r in results)
    successes = sum(sum(r["done"].values()) for r in results)
    assert successes > 0
    assert successes + conflicts + sum(r["failures"].get("refused", 0) for r in results) == (
        PROCESSES * OPERATIONS
    )
