"""The worklist as a to-do list (issue 13): every item something to do today, most urgent
first; waiting as planned is not an item; a success is never offered another ablation."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from pathway import Clinic, InvalidInput
from pathway.service.simulate import simulate
from pathway_cli.main import cli
from tests.integration.test_worklist import BASELINE, BLOCK, SAFE

CARE = {"modality": "exercise", "weeks": 8, "outcome": "failed"}
ABLATION = {"side": "right", "levels": ["C4-5"], "technique": "thermal", "guidance": "fluoroscopy"}


def ablated(clinic: Clinic, patient: str) -> None:
    """Enrolled 2025-09-01, ablated 2026-01-12, in follow-up from 2026-01-30 (baseline NRS 7)."""
    clinic.enroll(patient, "cervical-neurotomy", at="2025-09-01")
    clinic.advance(patient, "start_evaluation", at="2025-09-02")
    clinic.record(patient, "baseline", {**BASELINE, "onset_date": "2025-01-01"}, at="2025-09-02")
    clinic.record(patient, "conservative_care", CARE, at="2025-09-02")
    clinic.advance(patient, "schedule_blocks", at="2025-09-10")
    clinic.record(patient, "block", BLOCK, at="2025-10-01")
    clinic.record(patient, "block", {**BLOCK, "agent": "bupivacaine", "relief_hours": 5}, at="2025-11-05")
    clinic.advance(patient, "approve_ablation", at="2025-11-06")
    clinic.record(patient, "safety", SAFE, at="2026-01-12")
    clinic.record(patient, "ablation", ABLATION, at="2026-01-12")
    clinic.advance(patient, "perform_ablation", at="2026-01-12")
    clinic.advance(patient, "begin_follow_up", at="2026-01-30")


def items(clinic: Clinic, as_of: str, **options: object) -> set[tuple[str, str]]:
    return {(i.patient, i.kind) for i in clinic.worklist(as_of=as_of, **options)}  # type: ignore[arg-type]


def test_a_referral_is_to_triage_the_day_it_comes(clinic: Clinic) -> None:
    clinic.enroll("N1", "cervical-neurotomy", at="2026-03-02T09:00")
    found = clinic.worklist(as_of="2026-03-02T17:00")
    (item,) = [i for i in found if i.patient == "N1"]
    assert item.kind == "new_referral" and "start_evaluation" in item.action
    assert item.due == date(2026, 3, 2)
    clinic.advance("N1", "start_evaluation", at="2026-03-03")
    assert ("N1", "new_referral") not in items(clinic, "2026-03-04")


def test_a_stay_near_its_sla_is_due_and_one_past_it_is_over(clinic: Clinic) -> None:
    clinic.enroll("S1", "cervical-neurotomy", at="2026-03-01")
    clinic.advance("S1", "start_evaluation", at="2026-03-01")
    sla = clinic.catalog.get("cervical-neurotomy").state("evaluation").sla_days
    assert sla is not None
    day = date(2026, 3, 1).toordinal()
    before = date.fromordinal(day + sla - 4).isoformat()
    near = date.fromordinal(day + sla - 3).isoformat()
    past = date.fromordinal(day + sla + 1).isoformat()
    assert not {k for p, k in items(clinic, before) if p == "S1"} & {"sla_due", "over_sla"}
    assert ("S1", "sla_due") in items(clinic, near)
    assert ("S1", "sla_due") not in items(clinic, near, due_within=2)
    assert ("S1", "sla_due") in items(clinic, near, due_within=3)
    assert ("S1", "over_sla") in items(clinic, past, kinds=["over_sla"])


def test_a_success_is_not_offered_another_ablation_until_the_pain_comes_back(clinic: Clinic) -> None:
    ablated(clinic, "R1")
    clinic.record("R1", "follow_up", {"nrs": 2, "ndi": 8, "pgic": 6}, at="2026-04-15")
    clinic.record("R1", "follow_up", {"nrs": 2, "ndi": 8, "pgic": 6}, at="2026-07-20")  # 189 days, relieved
    # The repeat criteria pass (relief of 50% lasted 182 days), but the patient is well.
    (check,) = clinic.check("R1", "repeat_ablation", at="2026-07-21")
    assert check.allowed
    assert ("R1", "ready") not in items(clinic, "2026-07-21")
    clinic.record("R1", "follow_up", {"nrs": 6, "ndi": 20, "pgic": 3}, at="2026-08-10")  # the pain is back
    ready = [i for i in clinic.worklist(as_of="2026-08-11") if i.patient == "R1" and i.kind == "ready"]
    assert [i.trigger for i in ready] == ["repeat_ablation"]


def test_waiting_as_planned_is_not_an_item_but_missing_data_is(clinic: Clinic) -> None:
    # B1 waits for its second block, B2 for its procedure (safety recorded): as planned.
    for patient in ("B1", "B2", "B3"):
        clinic.enroll(patient, "cervical-neurotomy", at="2026-02-01")
        clinic.advance(patient, "start_evaluation", at="2026-02-02")
        clinic.record(patient, "baseline", {**BASELINE, "onset_date": "2025-01-01"}, at="2026-02-02")
        clinic.record(patient, "conservative_care", CARE, at="2026-02-02")
        clinic.advance(patient, "schedule_blocks", at="2026-02-03")
        clinic.record(patient, "block", BLOCK, at="2026-02-10")
    for patient in ("B2", "B3"):
        clinic.record(patient, "block", {**BLOCK, "agent": "bupivacaine", "relief_hours": 5}, at="2026-02-25")
        clinic.advance(patient, "approve_ablation", at="2026-02-26")
    clinic.record("B2", "safety", SAFE, at="2026-02-27")
    found = clinic.worklist(as_of="2026-02-28")
    mine = {(i.patient, i.kind): i for i in found if i.patient in ("B1", "B2", "B3")}
    assert ("B1", "blocked") not in mine and ("B2", "blocked") not in mine
    # B3 has no safety check: the step it waits for cannot happen without it.
    assert "safety" in mine["B3", "blocked"].action


def test_filters_and_bad_ones(clinic: Clinic) -> None:
    clinic.enroll("F1", "cervical-neurotomy", at="2026-03-01")
    clinic.enroll("F2", "lumbar-neurotomy", at="2026-03-01")
    assert {p for p, _ in items(clinic, "2026-03-02", pathway="lumbar-neurotomy")} == {"F2"}
    assert {p for p, _ in items(clinic, "2026-03-02", state="referred")} >= {"F1", "F2"}
    assert items(clinic, "2026-03-02", kinds=["rtt_breach"]) == set()
    with pytest.raises(InvalidInput, match="--kind"):
        clinic.worklist(kinds=["nonsense"])
    with pytest.raises(InvalidInput, match="--due-within"):
        clinic.worklist(due_within=-1)


def test_the_table_is_one_line_per_patient_and_fits_the_terminal(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    with Clinic.open(db, role="coordinator") as clinic:
        clinic.enroll("T1", "cervical-neurotomy", at="2026-01-02")  # new, over SLA, past 18 weeks
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", db, "worklist", "--as-of", "2026-06-05"], env={"COLUMNS": "70"})
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["T1"]
    assert "(+2)" in out.output or lines[2].endswith("...")
    assert all(len(line) <= 70 for line in lines)
    assert "pathway" in lines[0]
    full = json.loads(runner.invoke(cli, ["--db", db, "worklist", "--as-of", "2026-06-05", "--json"]).output)
    assert {i["kind"] for i in full} == {"new_referral", "over_sla", "rtt_breach"}
    assert all("due" in i for i in full)
    only = runner.invoke(cli, ["--db", db, "worklist", "--as-of", "2026-06-05", "--kind", "nonsense"])
    assert only.exit_code == 2


def test_on_a_simulated_clinic_every_item_is_something_to_do_today(tmp_path) -> None:
    """The items a simulated cohort gives: each one an action for today (a step ready that
    the guards allow now, a stay over or near its SLA, a clock at risk, a follow-up due, a
    blocked step naming what to record or decide) and never waiting as planned."""
    with Clinic.open(f"sqlite:///{tmp_path / 'c.db'}", actor="sim") as clinic:
        simulate(clinic, 300, seed=7, until=date(2026, 11, 1))
        as_of = "2026-11-01"
        found = clinic.worklist(as_of=as_of)
        workflow = clinic.catalog.get("cervical-neurotomy")
        routine = set(workflow.declarations.worklist.routine)
        assert found, "a cohort of 300 has something to do"
        for item in found:
            assert item.action and item.due is not None
            if item.kind == "ready":
                (check,) = clinic.check(item.patient, item.trigger, at=as_of, pathway=item.pathway)
                assert check.allowed, item
                assert item.trigger != "repeat_ablation" or not _relieved(clinic, item.patient, as_of)
            if item.kind == "blocked":
                assert item.state not in routine or "not before" in item.action, item
                assert "no ablation is recorded" not in item.action, item  # the procedure is planned
                assert "two diagnostic blocks are needed" not in item.action, item
        patients = {i.patient for i in found}
        # Far fewer lines than patients with open episodes: routine waiting is left out.
        open_now = {s.patient for s in clinic.list(open_only=True, at=as_of)}
        assert len(patients) < len(open_now)


def _relieved(clinic: Clinic, patient: str, as_of: str) -> bool:
    from pathway.domain import asof
    from pathway.domain.effects import live
    from pathway.service.worklist import still_relieved

    outcome = clinic.catalog.get("cervical-neurotomy").declarations.outcome
    assert outcome is not None
    history = live(clinic.history(patient, at=as_of))
    found = asof.for_guards(clinic.observations(patient, at=as_of), clinic._as_of(as_of))
    return still_relieved(outcome, history, found, clinic.zone)


def test_the_demo_worklist_fits_a_few_screens_and_every_item_is_for_today(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    built = runner.invoke(cli, ["--db", db, "demo", "--cohort", "600"])
    assert built.exit_code == 0, built.output
    out = runner.invoke(cli, ["--db", db, "worklist"], env={"COLUMNS": "160"})
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert len(lines) <= 2 + 40 + 1  # header, 40 patients, the line saying how to see more
    items = json.loads(runner.invoke(cli, ["--db", db, "worklist", "--json"]).output)
    with Clinic.open(db) as clinic:
        routine = set(clinic.catalog.get("cervical-neurotomy").declarations.worklist.routine)
        for item in items:
            assert item["action"] and item["due"]
            assert not (
                item["kind"] == "blocked" and item["state"] in routine and "not before" not in item["action"]
            )
            if item["kind"] == "ready" and item["trigger"] == "repeat_ablation":
                assert not _relieved(clinic, item["patient"], date.today().isoformat())
