"""`sweep` applies automatic transitions (mark_lost) whose guards pass, idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import Clinic, NotFound, RoleRefused
from pathway_cli.main import cli


def unanswered(clinic: Clinic, patient: str, *days: str) -> None:
    for day in days:
        clinic.record(patient, "contact_attempt", {"outcome": "no_response"}, at=day, role="coordinator")


def test_sweep_marks_lost_only_when_the_guard_passes_and_only_once(clinic: Clinic) -> None:
    for patient in ("L1", "L2", "L3"):
        clinic.enroll(patient, "cervical-neurotomy", at="2026-01-05", role="coordinator")
    unanswered(clinic, "L1", "2026-02-01", "2026-02-15", "2026-03-03")  # 30 days apart
    unanswered(clinic, "L2", "2026-02-01", "2026-02-15", "2026-03-02")  # 29 days
    # mark_lost is the coordinator's: a physician's sweep applies nothing and says why.
    with pytest.raises(RoleRefused, match="mark_lost is due for an enrollment and needs coordinator"):
        clinic.sweep(at="2026-03-10", role="physician")
    assert clinic.status("L1").state == "referred"
    done = clinic.sweep(at="2026-03-10", role="coordinator")
    assert [(t.patient, t.to_state) for t in done] == [("L1", "lost_to_follow_up")]
    last = clinic.history("L1")[-1]
    assert (last.trigger, last.actor, last.role) == ("mark_lost", "sweep", "coordinator")
    assert clinic.sweep(at="2026-03-10", role="coordinator") == []
    assert clinic.sweep(at="2026-03-10", role="physician") == []  # nothing due: nothing refused
    with pytest.raises(NotFound):
        clinic.sweep(at="2026-03-10", role="coordinator", pathway="cervical-neurotmy")
    assert clinic.status("L2").state == "referred"


def test_sweep_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Clinic.open(db, role="coordinator") as clinic:
        clinic.enroll("L1", "cervical-neurotomy", at="2026-01-05")
        unanswered(clinic, "L1", "2026-02-01", "2026-02-15", "2026-03-03")
    runner = CliRunner()
    physician = runner.invoke(cli, ["--db", db, "--role", "physician", "sweep", "--at", "2026-03-10"])
    assert physician.exit_code == 3 and "needs coordinator" in physician.stderr
    first = runner.invoke(cli, ["--db", db, "sweep", "--at", "2026-03-10", "--json"])
    assert first.exit_code == 0 and json.loads(first.output)[0]["to"] == "lost_to_follow_up"
    again = runner.invoke(cli, ["--db", db, "sweep", "--as-of", "2026-03-10"])
    assert again.exit_code == 0 and "0 change(s)" in again.output
