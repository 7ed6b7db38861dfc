"""A guard from a plug-in is code the clinic did not write: when it raises or returns
nonsense, that is a clear GuardError naming it (never a refusal, never a pass, never an
internal error), nothing is written, and the worklist still shows everyone else. A plug-in
may not replace a guard another package defines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from pathway import Catalog, Clinic, DefinitionError, GuardError
from pathway.domain.guards import GuardRegistry, GuardSpec, installed_guards, registry_from
from pathway.store.repository import Store

LOCAL = """
id: faulty-clinic
version: 1
roles: [coordinator]
states:
  waiting: {initial: true, sla_days: 7}
  treated: {terminal: true}
  declined: {terminal: true}
transitions:
  - {trigger: treat, source: waiting, dest: treated, guards: [divides]}
  - {trigger: treat_now, source: waiting, dest: treated, guards: [says_yes]}
  - {trigger: decline, source: waiting, dest: declined}
  - {trigger: settle, source: waiting, dest: treated, guards: [divides]}
  - {trigger: settle, source: waiting, dest: declined}
"""


def divides(record: object, params: object) -> object:
    return 1 / 0


def says_yes(record: object, params: object) -> object:
    return True  # not a Verdict


@pytest.fixture
def faulty(db_url: str, tmp_path: Path) -> Iterator[Clinic]:
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "faulty.yaml").write_text(LOCAL)
    guards = GuardRegistry([installed_guards()[n] for n in installed_guards().names()])
    guards.add(GuardSpec("divides", divides))  # type: ignore[arg-type]
    guards.add(GuardSpec("says_yes", says_yes))  # type: ignore[arg-type]
    clinic = Clinic(Store.open(db_url), Catalog.discover([folder], guards=guards), actor="t")
    yield clinic
    clinic.close()


def test_a_guard_that_raises_or_returns_nonsense_is_a_guard_error(faulty: Clinic) -> None:
    faulty.enroll("F1", "faulty-clinic", at="2026-01-05")
    faulty.enroll("C1", "cervical-neurotomy", at="2026-01-05")
    named = {
        "treat": "guard divides failed for F1 (ZeroDivisionError): a fault in the guard's code",
        "treat_now": "guard says_yes returned bool, not a Verdict: a fault in the guard's code",
    }
    for trigger, message in named.items():
        with pytest.raises(GuardError) as caught:
            faulty.advance("F1", trigger, at="2026-01-06")
        assert str(caught.value).startswith(message)
        # A check shows it as what stops the trigger, never as a pass.
        (check,) = faulty.check("F1", trigger)
        assert not check.allowed and [f.criterion for f in check.failures] == ["guard_fault"]
        assert check.failures[0].message.startswith(message)
    assert [e.trigger for e in faulty.history("F1")] == ["enroll"]  # nothing written
    assert len(faulty.outbox()) == 2  # the two enrolls only
    assert faulty.status("F1").state == "waiting"
    # The worklist names the fault for F1 and still lists the others.
    items = {(i.patient, i.kind, i.trigger) for i in faulty.worklist(as_of="2026-03-01")}
    assert {("F1", "guard_error", "treat"), ("F1", "guard_error", "treat_now")} <= items
    assert ("C1", "over_sla", None) in items
    # Of two transitions for one trigger, a fault in the first is not passed over for the
    # second: `check` says what `advance` would do, and `advance` stops with the fault.
    (settle,) = faulty.check("F1", "settle")
    assert not settle.allowed and settle.failures[0].criterion == "guard_fault"
    with pytest.raises(GuardError, match="guard divides failed"):
        faulty.advance("F1", "settle", at="2026-01-06")
    # A trigger without the faulty guard still works.
    assert faulty.advance("F1", "decline", at="2026-01-07").to_state == "declined"


def test_a_plugin_may_not_replace_a_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shadow_guards.py").write_text(
        "from pathway import Criteria\n"
        "def always(record, params):\n"
        "    return Criteria('eligibility').verdict()\n"
        "GUARDS = {'eligibility': always}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    shipped = EntryPoint("spine", "pathway_workflows.spine:GUARDS", "pathway.guards")
    shadow = EntryPoint("zz_shadow", "shadow_guards:GUARDS", "pathway.guards")
    with pytest.raises(
        DefinitionError, match=r"guard .eligibility. is already defined by pathway_workflows\.spine:GUARDS"
    ):
        registry_from([shipped, shadow])
    # The same guard re-exported by another package is not a clash either.
    (tmp_path / "reexport_guards.py").write_text(
        "from pathway_workflows.spine import GUARDS as SHIPPED\n"
        "GUARDS = {'eligibility': SHIPPED['eligibility']}\n"
    )
    reexport = EntryPoint("zz_reexport", "reexport_guards:GUARDS", "pathway.guards")
    assert "eligibility" in registry_from([shipped, reexport])
    sys.modules.pop("reexport_guards", None)
    # The same entry point seen twice (two metadata copies of one install) is not a clash.
    assert "eligibility" in registry_from([shipped, EntryPoint("spine2", shipped.value, shipped.group)])
    sys.modules.pop("shadow_guards", None)
