"""The CLI as a coordinator uses it: exit codes, messages, JSON contracts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pathway_cli.main import cli

Run = Callable[..., Result]

BASELINE = [
    "onset_date=2025-05-01",
    "nrs=7",
    "ndi=22",
    "axial_predominant=yes",
    "radiculopathy=none",
    "red_flags=",
]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run `pathway --db <tmp file> ARGS...` as a physician unless --role is given."""
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'clinic.db'}"

    def invoke(*args: str, role: str = "physician", env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(
            cli, ["--db", db, "--actor", "sam", "--role", role, *args], env=env, catch_exceptions=False
        )
        assert "Traceback" not in result.output
        return result

    return invoke


def evaluated(run: Run, patient: str = "MRN1") -> None:
    assert run("enroll", patient, "--pathway", "cervical-neurotomy", "--at", "2026-01-05").exit_code == 0
    assert run("advance", patient, "start_evaluation", "--at", "2026-01-12").exit_code == 0
    assert run("record", patient, "baseline", *BASELINE, "--at", "2026-01-12").exit_code == 0
    care = ["modality=physiotherapy", "weeks=8", "outcome=failed"]
    assert run("record", patient, "conservative_care", *care, "--at", "2026-01-12").exit_code == 0


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_enroll_then_status_json_has_the_contract_fields(run: Run) -> None:
    assert (
        run(
            "enroll", "MRN1", "--pathway", "cervical-neurotomy", "--name", "Jo", "--at", "2026-01-05"
        ).exit_code
        == 0
    )
    status = json.loads(run("status", "MRN1", "--json").output)
    for key in ("patient", "pathway", "version", "state", "since", "overdue", "triggers"):
        assert key in status
    assert (status["patient"], status["state"], status["version"]) == ("MRN1", "referred", 1)
    assert status["overdue"] is True  # referred long ago, SLA 14 days
    for trigger in status["triggers"]:
        assert {"trigger", "allowed", "reasons"} <= set(trigger)


def test_a_refused_advance_exits_3_with_every_reason(run: Run) -> None:
    evaluated(run)
    run("record", "MRN1", "baseline", *BASELINE[:-1], "red_flags=tumour", "--at", "2026-01-13")
    result = run("advance", "MRN1", "schedule_blocks", "--at", "2025-12-01")
    assert result.exit_code == 1 and "before" in result.output
    result = run("advance", "MRN1", "schedule_blocks", "--at", "2026-01-20", "--json")
    assert result.exit_code == 3
    body = json.loads(result.stdout)
    assert body["refused"] is True and body["trigger"] == "schedule_blocks"
    assert [r["guard"] for r in body["reasons"]] == ["eligibility"]
    assert "red flags present: tumour" in body["reasons"][0]["message"]
    assert json.loads(run("status", "MRN1", "--json").output)["state"] == "evaluation"


def test_a_role_refusal_exits_3_and_names_the_role(run: Run) -> None:
    evaluated(run)
    result = run("advance", "MRN1", "schedule_blocks", "--at", "2026-01-20", role="coordinator")
    assert result.exit_code == 3
    assert "needs physician" in result.output
    result = run("record", "MRN1", "block", "side=left", role="coordinator")
    assert result.exit_code == 3 and "needs physician" in result.output


def test_invalid_field_values_exit_1_naming_each_field_and_store_nothing(run: Run) -> None:
    evaluated(run)
    result = run("record", "MRN1", "follow_up", "nrs=2-8", "ndi=51", "pgic=4")
    assert result.exit_code == 1
    assert "nrs:" in result.output and "not a range" in result.output and "ndi:" in result.output
    history = json.loads(run("status", "MRN1", "--json").output)
    assert history["enrollment_version"] == 4  # enroll, start_evaluation, two records


def test_a_level_outside_the_region_is_refused(run: Run) -> None:
    evaluated(run)
    args = [
        "side=right",
        "levels=L4-5",
        "agent=lidocaine",
        "guidance=fluoroscopy",
        "sedation=none",
        "pre_nrs=7",
        "post_nrs=1",
        "relief_hours=2",
    ]
    result = run("record", "MRN1", "block", *args)
    assert result.exit_code == 1 and "levels:" in result.output and "C2-3" in result.output


def test_unknown_patient_exits_4(run: Run) -> None:
    assert run("db", "upgrade").exit_code == 0
    result = run("status", "NOBODY")
    assert result.exit_code == 4 and "enroll them first" in result.output


def test_unknown_command_or_option_exits_2(run: Run) -> None:
    assert run("frobnicate").exit_code == 2
    assert run("status", "MRN1", "--colour").exit_code == 2


def test_a_trigger_not_possible_now_names_those_that_are(run: Run) -> None:
    run("enroll", "MRN1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    result = run("advance", "MRN1", "approve_ablation")
    assert result.exit_code == 1
    assert "from referred you can use: start_evaluation" in result.output


def test_record_prints_the_id_that_correct_takes(run: Run) -> None:
    evaluated(run)
    result = run("record", "MRN1", "follow_up", "nrs=3", "ndi=10", "pgic=6", "--json")
    observation = json.loads(result.output)
    assert observation["kind"] == "follow_up" and observation["data"]["nrs"] == 3
    text = run("record", "MRN1", "contact_attempt", "outcome=no_response").output
    assert "contact_attempt" in text
    result = run("correct", "MRN1", str(observation["id"]), "--reason", "wrong patient")
    assert result.exit_code == 0 and "entered-in-error" in result.output
    again = run("correct", "MRN1", str(observation["id"]), "--reason", "again")
    assert again.exit_code == 1


def test_history_json_lists_events_with_effective_and_recorded_times(run: Run) -> None:
    evaluated(run)
    run("advance", "MRN1", "hold", "--reason", "patient abroad", "--at", "2026-01-13T10:00+02:00")
    events = json.loads(run("history", "MRN1", "--json").output)
    assert [e["seq"] for e in events] == [1, 2, 3]
    last = events[-1]
    for key in ("seq", "trigger", "from", "to", "at", "recorded_at", "actor", "role"):
        assert key in last
    assert (last["trigger"], last["from"], last["to"]) == ("hold", "evaluation", "on_hold")
    assert last["at"] == "2026-01-13T08:00:00Z" and last["actor"] == "sam"
    assert "patient abroad" in run("history", "MRN1").output


def test_list_json_and_filters(run: Run) -> None:
    evaluated(run, "MRN1")
    run("enroll", "MRN2", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    rows = json.loads(run("list", "--json").output)
    assert {r["patient"] for r in rows} == {"MRN1", "MRN2"}
    for key in ("patient", "pathway", "state", "since"):
        assert key in rows[0]
    only = json.loads(run("list", "--state", "referred", "--json").output)
    assert [r["patient"] for r in only] == ["MRN2"]
    assert run("list", "--state", "nowhere").exit_code == 1


def test_check_explains_without_changing_anything(run: Run) -> None:
    evaluated(run)
    before = run("status", "MRN1", "--json").output
    result = run("check", "MRN1", "schedule_blocks", "--at", "2026-01-20", "--json")
    assert result.exit_code == 0
    (check,) = json.loads(result.output)
    assert check["allowed"] is True
    assert json.loads(run("status", "MRN1", "--json").output) == json.loads(before)


def test_environment_variables_choose_database_actor_and_role(tmp_path: Path) -> None:
    env = {
        "PATHWAY_DB": f"sqlite:///{tmp_path / 'env.db'}",
        "PATHWAY_ACTOR": "kim",
        "PATHWAY_ROLE": "physician",
    }
    runner = CliRunner()
    assert runner.invoke(cli, ["enroll", "P9", "--pathway", "cervical-neurotomy"], env=env).exit_code == 0
    assert runner.invoke(cli, ["advance", "P9", "start_evaluation"], env=env).exit_code == 0
    result = runner.invoke(cli, ["advance", "P9", "order_imaging"], env=env)
    assert result.exit_code == 0
    events = json.loads(runner.invoke(cli, ["history", "P9", "--json"], env=env).output)
    assert (events[-1]["actor"], events[-1]["role"]) == ("kim", "physician")
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize("db", ["sqlite:///{tmp}/missing/x.db", "mysql://x/y", "not a url at all::"])
def test_a_bad_database_is_one_clear_error(tmp_path: Path, db: str) -> None:
    # enroll: a command that may make a new database, so the URL itself is judged
    enroll = ["enroll", "P1", "--pathway", "cervical-neurotomy"]
    result = CliRunner().invoke(cli, ["--db", db.format(tmp=tmp_path), *enroll])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01", "1066-10-14"])
def test_bad_at_values_are_refused(run: Run, at: str) -> None:
    result = run("enroll", "MRN1", "--pathway", "cervical-neurotomy", "--at", at)
    assert result.exit_code == 1 and "--at" in result.output
    assert run("status", "MRN1").exit_code == 4


def test_workflows_commands(run: Run, tmp_path: Path) -> None:
    listed = json.loads(run("workflows", "list", "--json").output)
    assert {w["id"] for w in listed} >= {"cervical-neurotomy", "lumbar-neurotomy"}
    shown = run("workflows", "show", "cervical-neurotomy").output
    for state in (
        "referred",
        "evaluation",
        "imaging",
        "diagnostic_block",
        "ablation",
        "recovery",
        "follow_up",
        "on_hold",
        "discharged",
        "ineligible",
        "declined",
        "lost_to_follow_up",
        "referred_elsewhere",
    ):
        assert state in shown
    assert run("workflows", "diagram", "cervical-neurotomy").output.startswith("stateDiagram-v2")
    dot = run("workflows", "diagram", "cervical-neurotomy", "--format", "dot").output
    assert dot.startswith("digraph")
    assert "$schema" in json.loads(run("workflows", "schema").output)
    assert run("workflows", "show", "nope").exit_code == 4


def test_validate_reports_every_problem_with_its_location(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: bad\nversion: 1\nroles: [coordinator]\nstates:\n  a: {initial: true}\n"
        "  island: {}\n  done: {terminal: true}\ntransitions:\n"
        "  - {trigger: go, source: a, dest: dnoe}\n  - {trigger: leave, source: island, dest: done}\n"
    )
    result = run("workflows", "validate", str(bad))
    assert result.exit_code == 1
    assert "transitions[0] (go).dest: unknown state 'dnoe'" in result.output
    assert "states.island: unreachable" in result.output
    assert run("workflows", "validate").exit_code == 0


def test_demo_builds_patients_and_shows_refusals(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "demo", "--cohort", "40"])
    assert result.exit_code == 0, result.output
    assert "REFUSED" in result.output and "71.4%" in result.output
    assert "Bottlenecks: Most waiting is in" in result.output
    assert "Referral to treatment:" in result.output
    again = CliRunner().invoke(cli, ["--db", db, "demo", "--cohort", "0"])
    assert again.exit_code == 1 and "empty database" in again.output


def test_db_upgrade_on_a_fresh_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    first = CliRunner().invoke(cli, ["--db", db, "db", "upgrade"])
    assert first.exit_code == 0 and "upgraded from empty" in first.output
    second = CliRunner().invoke(cli, ["--db", db, "db", "upgrade"])
    assert "already at revision" in second.output


def test_history_shows_who_recorded_and_who_corrected(run: Run) -> None:
    evaluated(run)
    recorded = json.loads(
        run("record", "MRN1", "contact_attempt", "outcome=reached", "--json", role="coordinator").output
    )
    run("correct", "MRN1", str(recorded["id"]), "--reason", "called the wrong number", role="coordinator")
    text = run("history", "MRN1").output
    assert f"record contact_attempt {recorded['id']}" in text
    assert f"correct contact_attempt {recorded['id']}" in text and "called the wrong number" in text
    audit = json.loads(run("history", "MRN1", "--json", "--audit").output)
    correction = next(e for e in audit if e["type"] == "correction")
    assert (correction["actor"], correction["reason"]) == ("sam", "called the wrong number")
    assert {e["type"] for e in audit} == {"event", "observation", "correction"}
    assert all("seq" in e for e in json.loads(run("history", "MRN1", "--json").output))
