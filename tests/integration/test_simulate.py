"""The synthetic cohort: made through the API, deterministic for a seed, consistent."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from pathway import Clinic
from pathway.service.simulate import simulate
from pathway_cli.main import cli


def cohort_log(url: str) -> list[tuple[object, ...]]:
    with Clinic.open(url) as clinic, clinic.store.read() as tx:
        return [
            tuple(r)
            for r in tx.conn.execute(
                text(
                    "SELECT p.identifier, e.seq, e.trigger, e.from_state, e.to_state, e.effective_at "
                    "FROM events e JOIN enrollments n ON n.id = e.enrollment_id "
                    "JOIN patients p ON p.id = n.patient_id ORDER BY p.identifier, e.seq"
                )
            )
        ]


def test_the_same_seed_gives_the_same_cohort(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("a", "b")]
    for url in urls:
        with Clinic.open(url, actor="sim") as clinic:
            simulate(clinic, 60, seed=3, until=date(2026, 11, 1))
    first, second = (cohort_log(u) for u in urls)
    assert first == second and len(first) > 300


def test_a_cohort_covers_the_journey_and_its_exits(db_url: str) -> None:
    with Clinic.open(db_url, actor="sim") as clinic:
        outcomes = simulate(clinic, 150, seed=11, until=date(2026, 11, 1))
        assert sum(outcomes.values()) == 150
        states = {s.state for s in clinic.list()}
        assert {"ineligible", "discharged", "follow_up"} <= states
        triggers = {e.trigger for s in clinic.list()[:150] for e in clinic.history(s.patient)}
        assert {"approve_ablation", "perform_ablation", "begin_follow_up"} <= triggers
        for summary in clinic.list():  # every stored state is the end of its own event log
            assert clinic.history(summary.patient)[-1].to_state == summary.state


def test_simulate_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(
        cli, ["--db", db, "simulate", "--patients", "20", "--seed", "5", "--until", "2026-11-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sum(json.loads(result.output).values()) == 20
    bad = CliRunner().invoke(cli, ["--db", db, "simulate", "--patients", "0"])
    assert bad.exit_code == 2


def test_one_by_one_commits_each_command_on_its_own(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill during `simulate --one-by-one` loses only the command under way: every
    command made before it is in the database (a batch of 500 would have lost them all)."""
    from pathway.service import simulate as module

    passed = {"made": 0, "kept": 0}
    original = module.Trip.advance

    def advance(self: module.Trip, trigger: str, role: str, reason: str | None = None) -> bool:
        passed["made"] += 1
        if passed["made"] == 40:  # the 40th advance is "killed" before it writes
            raise KeyboardInterrupt
        done = original(self, trigger, role, reason)
        passed["kept"] += done
        return done

    monkeypatch.setattr(module.Trip, "advance", advance)
    with Clinic.open(db_url, actor="sim") as clinic, pytest.raises(KeyboardInterrupt):
        simulate(clinic, 30, seed=8, until=date(2026, 11, 1), staged=False)
    with Clinic.open(db_url) as clinic, clinic.store.read() as tx:
        stored = tx.conn.execute(text("SELECT count(*) FROM events WHERE trigger <> 'enroll'")).scalar()
    assert stored == passed["kept"] > 20
