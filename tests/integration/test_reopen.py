"""Reopening a closed episode (CLINICAL.md clarification 10): a terminal transition entered
in error is voided by a `reopen` event (physician or coordinator, reason required) within
30 days of it. The close stays in the log, marked voided; the enrollment goes back to the
state it was in, and reports, clocks and the worklist treat the close as if it had never
happened."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import AlreadyEnrolled, Clinic, EnrollmentNotClosed, GuardRefused, InvalidInput, RoleRefused
from pathway.interop import fhir
from pathway_cli.main import cli
from tests.integration.test_third_pathway import KNEE, knee_catalog

PATHWAY = "cervical-neurotomy"


def declined(clinic: Clinic, patient: str = "R1", *, on: str = "2026-01-20") -> None:
    clinic.enroll(patient, PATHWAY, at="2026-01-05", role="coordinator")
    clinic.advance(patient, "start_evaluation", at="2026-01-08", role="coordinator")
    clinic.advance(patient, "decline", at=on, role="coordinator")


def test_reopen_goes_back_where_the_close_found_it(clinic: Clinic) -> None:
    declined(clinic)
    done = clinic.reopen("R1", reason="declined the wrong patient", at="2026-01-22")
    assert (done.from_state, done.to_state, done.seq) == ("declined", "evaluation", 4)
    status = clinic.status("R1")
    assert status.open and status.state == "evaluation"
    assert status.since == datetime.fromisoformat("2026-01-08T00:00:00+00:00")  # the stay goes on
    log = clinic.history("R1")
    assert [(e.trigger, e.voids) for e in log] == [
        ("enroll", None),
        ("start_evaluation", None),
        ("decline", None),
        ("reopen", 3),
    ]  # the close stays in the log; the reopen names it
    assert log[-1].reason == "declined the wrong patient"
    (message,) = [m["message"] for m in clinic.outbox() if m["message"]["type"] == "enrollment.reopened"]
    assert (message["from"], message["to"], message["voids"]) == ("declined", "evaluation", 3)
    assert clinic.verify_audit().intact
    # It can close again, and that close can be reopened in its turn.
    clinic.advance("R1", "decline", at="2026-01-25", role="coordinator")
    clinic.reopen("R1", reason="again the wrong patient", at="2026-01-26")
    assert clinic.status("R1").state == "evaluation" and clinic.verify_audit().intact


@pytest.mark.parametrize("days,allowed", [(30, True), (31, False)])
def test_within_30_days_of_the_close(clinic: Clinic, days: int, allowed: bool) -> None:
    declined(clinic, on="2026-01-20T23:30:00+00:00")
    at = datetime.fromisoformat("2026-01-20T00:00:00+00:00") + timedelta(days=days)
    if allowed:
        clinic.reopen("R1", reason="wrong patient", at=at)
        assert clinic.status("R1").open
        return
    with pytest.raises(GuardRefused, match="closed on 2026-01-20, 31 days ago; it can be reopened within 30"):
        clinic.reopen("R1", reason="wrong patient", at=at)
    assert not clinic.status("R1").open and len(clinic.history("R1")) == 3


def test_the_30_days_are_calendar_days_in_the_clinic_time_zone(clinic: Clinic) -> None:
    clinic.set_setting("timezone", "Australia/Sydney")
    # 20 Jan 13:30 UTC is 21 Jan 00:30 in Sydney: the close's day is the 21st there, so
    # 20 Feb 13:30 UTC (21 Feb in Sydney) is day 31 and refused, 19 Feb 13:30 UTC day 30.
    declined(clinic, on="2026-01-20T13:30:00+00:00")
    with pytest.raises(GuardRefused, match="closed on 2026-01-21, 31 days ago"):
        clinic.reopen("R1", reason="wrong patient", at="2026-02-20T13:30:00+00:00")
    clinic.reopen("R1", reason="wrong patient", at="2026-02-19T13:30:00+00:00")


def test_what_a_reopen_needs(clinic: Clinic) -> None:
    clinic.enroll("R1", PATHWAY, at="2026-01-05", role="coordinator")
    with pytest.raises(EnrollmentNotClosed, match="no closed episode"):
        clinic.reopen("R1", reason="x", at="2026-01-06")
    clinic.advance("R1", "decline", at="2026-01-06", role="coordinator")
    with pytest.raises(InvalidInput, match="--reason"):
        clinic.reopen("R1", reason="  ", at="2026-01-07")
    with pytest.raises(InvalidInput, match="before the close"):
        clinic.reopen("R1", reason="wrong", at="2026-01-05")
    # A later episode in the same region: the earlier one stays closed (no overlap).
    clinic.enroll("R1", "lumbar-neurotomy", at="2026-01-08", role="coordinator")
    clinic.enroll("R1", PATHWAY, at="2026-01-09", role="coordinator")
    with pytest.raises(AlreadyEnrolled, match="later episode"):
        clinic.reopen("R1", reason="wrong", at="2026-01-10", pathway=PATHWAY)


def test_roles_and_days_come_from_the_workflow_file(db_url: str) -> None:
    from pathway.store.repository import Store

    with Clinic(Store.open(db_url), knee_catalog(), actor="n", role="nurse") as c:
        c.enroll("K1", KNEE, at="2026-01-05")
        c.advance("K1", "withdraw", at="2026-01-10")
        with pytest.raises(RoleRefused, match="roles are surgeon"):
            c.advance("K1", "undo_close", reason="wrong patient", at="2026-01-11")
        with pytest.raises(GuardRefused, match="within 14 days"):
            c.advance("K1", "undo_close", reason="wrong patient", at="2026-01-25", role="surgeon")
        done = c.advance("K1", "undo_close", reason="wrong patient", at="2026-01-24", role="surgeon")
        assert (done.trigger, done.to_state) == ("undo_close", "waiting_list")


def test_reports_clocks_and_worklist_read_the_close_as_never_made(clinic: Clinic) -> None:
    declined(clinic, on="2026-02-01")
    as_of = "2026-06-15"  # 161 days after referral: past the 18 weeks
    before = clinic.report_rtt(as_of=as_of).to_dict()
    assert before["incomplete"] == 0 and before["at_risk"] == []  # the decline stopped the clock
    clinic.reopen("R1", reason="declined the wrong patient", at="2026-02-10")
    after = clinic.report_rtt(as_of=as_of).to_dict()
    assert after["incomplete"] == 1  # the clock never stopped
    assert [(w["patient"], w["days"], w["breached"]) for w in after["at_risk"]] == [("R1", 161, True)]
    funnel = clinic.report_funnel(as_of=as_of)
    assert funnel["closed_by_state"]["declined"] == 0 and funnel["exits"] == []
    worklist = clinic.worklist(as_of=as_of)
    assert {i.kind for i in worklist if i.patient == "R1"} >= {"rtt_breach", "over_sla"}
    bottlenecks = clinic.report_bottlenecks(as_of=as_of).to_dict()
    evaluation = next(s for s in bottlenecks["states"] if s["state"] == "evaluation")
    assert (evaluation["wip"], evaluation["exits"]) == (1, 0)  # one stay, still going
    assert evaluation["open_median_days"] == 158.0  # from 8 January, as if never closed
    bundle = json.loads(fhir.export_json(clinic, "R1"))
    (episode,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"]
    assert episode["status"] == "active" and "end" not in episode["period"]
    assert "cancelled" not in {h["status"] for h in episode["statusHistory"]}


def test_the_cli_reopens_and_marks_the_voided_close(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--db", db, *args])
        return result.exit_code, result.output

    assert run("enroll", "R1", "--at", "2026-01-05")[0] == 0
    assert run("advance", "R1", "decline", "--at", "2026-01-10")[0] == 0
    code, output = run("reopen", "R1", "--at", "2026-01-11")
    assert code == 2 and "--reason" in output
    code, output = run("reopen", "R1", "--reason", "wrong patient", "--at", "2026-01-11")
    assert code == 0 and "declined -> referred" in output
    code, output = run("history", "R1")
    assert "referred -> declined (voided by 3)" in output and "reopen (voids 2)" in output
    code, output = run("history", "R1", "--json")
    events = json.loads(output)
    assert [(e["trigger"], e["voids"], e["voided_by"]) for e in events] == [
        ("enroll", None, None),
        ("decline", None, 3),
        ("reopen", 2, None),
    ]
    code, output = run("reopen", "R1", "--reason", "again")
    assert code == 1 and "no closed episode" in output
