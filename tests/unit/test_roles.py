"""Every transition and observation kind of the shipped pathways, with an allowed and a
disallowed role: the disallowed one is refused naming the role needed."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pathway.definitions.loader import load_file
from pathway.domain.definition import HELD_FROM, TransitionSpec, Workflow
from pathway.domain.guards import installed_guards
from pathway.domain.machine import PathwayMachine
from pathway.domain.record import Enrollment, PatientRecord
from pathway.errors import GuardRefused, RoleRefused

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / "workflows").glob("*.yaml"))
LOADED = [load_file(path, installed_guards()) for path in WORKFLOWS]
CASES = [(wf, t, source) for wf in LOADED for t in wf.transitions for source in t.sources[:1]]


def record(wf: Workflow, state: str, reason: str | None = "because") -> PatientRecord:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    enrollment = Enrollment(
        1, "P1", wf.id, wf.version, wf.default_profile, state, None, now, now, None, 1, now, 1
    )
    return PatientRecord.build(enrollment, now, [], [], reason=reason)


@pytest.mark.parametrize(("wf", "t", "source"), CASES, ids=[f"{wf.id}:{t.trigger}:{s}" for wf, t, s in CASES])
def test_each_transition_admits_its_roles_and_refuses_others(
    wf: Workflow, t: TransitionSpec, source: str
) -> None:
    machine = PathwayMachine(wf, installed_guards())
    held_from = "evaluation" if t.dest == HELD_FROM else None
    for role in t.roles:  # allowed: the guards decide, never the role check
        with contextlib.suppress(GuardRefused):
            machine.fire(source, held_from, t.trigger, record(wf, source), role, "P1")
    others = [r for r in (*wf.roles, "receptionist") if r not in t.roles]
    for role in others:
        with pytest.raises(RoleRefused) as caught:
            machine.fire(source, held_from, t.trigger, record(wf, source), role, "P1")
        assert " or ".join(t.roles) in str(caught.value)
        assert set(caught.value.needed) == set(t.roles)


def test_clinical_decisions_and_procedures_need_a_physician() -> None:
    for wf in LOADED:
        physician_only = {t.trigger for t in wf.transitions if t.roles == ("physician",)}
        assert physician_only >= {
            "order_imaging",
            "schedule_blocks",
            "approve_ablation",
            "perform_ablation",
            "repeat_ablation",
            "rediagnose",
            "discharge",
            "mark_ineligible",
            "refer_elsewhere",
        }
        assert {k for k, spec in wf.kinds.items() if spec.roles == ("physician",)} == {
            "baseline",
            "imaging",
            "block",
            "ablation",
        }
        assert next(t for t in wf.transitions if t.trigger == "mark_lost").roles == ("coordinator",)


KIND_CASES = [(wf, kind) for wf in LOADED for kind in wf.kinds.values()]


@pytest.mark.parametrize(("wf", "kind"), KIND_CASES, ids=[f"{wf.id}:{k.name}" for wf, k in KIND_CASES])
def test_each_observation_kind_admits_its_roles_and_refuses_others(
    wf: Workflow, kind: object, tmp_path: Path
) -> None:
    from pathway import Clinic, InvalidInput

    with Clinic.open(f"sqlite:///{tmp_path / 'roles.db'}", actor="t") as clinic:
        clinic.enroll("P1", wf.id, at="2026-01-05", role=wf.roles[0])
        for role in kind.roles:  # type: ignore[attr-defined]
            with pytest.raises(InvalidInput):  # past the role check, the empty values fail
                clinic.record("P1", kind.name, {}, role=role)  # type: ignore[attr-defined]
        for role in [r for r in wf.roles if r not in kind.roles]:  # type: ignore[attr-defined]
            with pytest.raises(RoleRefused, match="needs"):
                clinic.record("P1", kind.name, {}, role=role)  # type: ignore[attr-defined]
        # A role that no pathway has (a typo) is named as unknown, with the roles there are.
        with pytest.raises(
            InvalidInput, match=r"--role: unknown role 'receptionist' \(roles: coordinator, physician\)"
        ):
            clinic.record("P1", kind.name, {}, role="receptionist")  # type: ignore[attr-defined]
        assert clinic.observations("P1") == []
