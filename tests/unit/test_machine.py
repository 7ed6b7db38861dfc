"""The machine: one per (pathway, version), guards evaluated through it, hold and resume."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pathway.definitions.loader import load_text
from pathway.domain.definition import Workflow
from pathway.domain.guards import GuardRegistry, GuardSpec
from pathway.domain.machine import PathwayMachine, machine_for
from pathway.domain.record import Enrollment, PatientRecord
from pathway.domain.verdicts import Failure, Verdict
from pathway.errors import GuardRefused, InvalidTrigger, RoleRefused

FLOW = """
id: flow
version: 1
roles: [coordinator, physician]
states:
  start: {initial: true}
  work: {sla_days: 5}
  paused: {hold: true}
  done: {terminal: true}
transitions:
  - {trigger: begin, source: start, dest: work, roles: [coordinator]}
  - {trigger: finish, source: work, dest: done, roles: [physician], guards: [ready, signed]}
  - {trigger: hold, source: "*", exclude: [paused], dest: paused, reason: required}
  - {trigger: resume, source: paused, dest: "@held_from"}
"""


def failing(name: str, message: str) -> GuardSpec:
    return GuardSpec(name, lambda r, p: Verdict(name, (Failure(name, message),)))


def passing(name: str) -> GuardSpec:
    return GuardSpec(name, lambda r, p: Verdict(name))


def workflow(guards: GuardRegistry) -> Workflow:
    return load_text(FLOW, guards)


def record(state: str = "start", reason: str | None = None) -> PatientRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    enrollment = Enrollment(1, "P1", "flow", 1, "default", state, None, now, now, None, 1, now, 1)
    return PatientRecord.build(enrollment, now, [], [], reason=reason)


def test_a_refusal_carries_every_failed_verdict() -> None:
    guards = GuardRegistry([failing("ready", "not ready yet"), failing("signed", "not signed")])
    machine = PathwayMachine(workflow(guards), guards)
    with pytest.raises(GuardRefused) as caught:
        machine.fire("work", None, "finish", record("work"), "physician", "P1 (work)")
    assert [v.guard for v in caught.value.verdicts] == ["ready", "signed"]
    assert "not ready yet" in str(caught.value) and "not signed" in str(caught.value)


def test_passing_guards_move_to_the_destination() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    assert machine.fire("work", None, "finish", record("work"), "physician", "P1").dest == "done"


def test_a_role_without_the_transition_is_refused_naming_the_role_needed() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    with pytest.raises(RoleRefused, match="needs physician"):
        machine.fire("work", None, "finish", record("work"), "coordinator", "P1")


def test_a_trigger_not_valid_here_names_the_triggers_that_are() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    with pytest.raises(InvalidTrigger, match="from start you can use: begin, hold"):
        machine.fire("start", None, "finish", record(), "physician", "P1")
    with pytest.raises(InvalidTrigger, match="unknown trigger 'fnish'"):
        machine.fire("start", None, "fnish", record(), "physician", "P1")


def test_resume_returns_to_the_state_the_hold_came_from() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    assert machine.fire("paused", "work", "resume", record("paused"), "coordinator", "P1").dest == "work"
    assert machine.fire("paused", "start", "resume", record("paused"), "coordinator", "P1").dest == "start"


def test_hold_needs_a_reason() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    with pytest.raises(GuardRefused, match="needs a reason"):
        machine.fire("work", None, "hold", record("work"), "coordinator", "P1")
    fired = machine.fire("work", None, "hold", record("work", reason="flu"), "coordinator", "P1")
    assert fired.dest == "paused"


def test_check_lists_every_trigger_with_its_unmet_criteria_and_changes_nothing() -> None:
    guards = GuardRegistry([failing("ready", "not ready yet"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    checks = {c.trigger: c for c in machine.check("work", None, record("work"), "coordinator")}
    assert set(checks) == {"finish", "hold"}
    assert not checks["finish"].allowed
    assert not checks["finish"].role_allowed
    assert [f.message for f in checks["finish"].failures] == ["not ready yet"]


def test_one_machine_per_workflow_version_no_models_kept() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    wf = workflow(guards)
    machine = machine_for(wf, guards)
    assert machine_for(wf, guards) is machine
    for _ in range(100):
        machine.fire("start", None, "begin", record(), "coordinator", "P1")
    assert machine.machine.models == []


def test_auto_transitions_are_off() -> None:
    guards = GuardRegistry([passing("ready"), passing("signed")])
    machine = PathwayMachine(workflow(guards), guards)
    assert "to_done" not in machine.machine.events
