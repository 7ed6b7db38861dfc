"""Loading workflow files: every problem, with its location, at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pathway.definitions.loader import load_file, load_text
from pathway.domain.guards import GuardRegistry, GuardSpec, installed_guards
from pathway.domain.verdicts import Verdict
from pathway.errors import DefinitionError

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SHIPPED = sorted(WORKFLOWS.glob("*.yaml"))

MINIMAL = """
id: tiny
version: 1
roles: [coordinator]
states:
  start: {initial: true}
  middle: {}
  done: {terminal: true}
transitions:
  - {trigger: go, source: start, dest: middle}
  - {trigger: finish, source: middle, dest: done}
"""


def dummy_guards(*names: str) -> GuardRegistry:
    return GuardRegistry([GuardSpec(n, lambda r, p, n=n: Verdict(n)) for n in names])


def problems_of(text: str, guards: GuardRegistry | None = None) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, guards or dummy_guards())
    return list(caught.value.problems)


def edit(**changes: object) -> str:
    data = yaml.safe_load(MINIMAL)
    data.update(changes)
    return yaml.safe_dump(data)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_workflow_loads_and_passes_the_static_check(path: Path) -> None:
    workflow = load_file(path, installed_guards())
    assert workflow.id and workflow.version >= 1
    assert workflow.initial in workflow.states


def test_a_minimal_workflow_loads() -> None:
    workflow = load_text(MINIMAL, dummy_guards())
    assert workflow.initial == "start"
    assert workflow.triggers_from("start") == ("go",)


def test_unknown_dest_is_reported_with_its_location() -> None:
    text = MINIMAL.replace("dest: done", "dest: dne")
    assert any(
        p.startswith("transitions[1] (finish).dest") and "unknown state 'dne'" in p for p in problems_of(text)
    )


def test_every_problem_is_reported_at_once() -> None:
    text = MINIMAL.replace("dest: done", "dest: dne").replace("source: start", "source: strat")
    found = problems_of(text)
    assert any("unknown state 'dne'" in p for p in found)
    assert any("unknown state 'strat'" in p for p in found)


def test_unreachable_state_is_refused() -> None:
    data = yaml.safe_load(MINIMAL)
    data["states"]["island"] = {}
    data["transitions"].append({"trigger": "leave", "source": "island", "dest": "done"})
    assert any("states.island: unreachable" in p for p in problems_of(yaml.safe_dump(data)))


def test_non_terminal_dead_end_is_refused() -> None:
    data = yaml.safe_load(MINIMAL)
    data["states"]["stuck"] = {}
    data["transitions"].append({"trigger": "wander", "source": "start", "dest": "stuck"})
    assert any(
        "states.stuck: not terminal but no transition leaves it" in p
        for p in problems_of(yaml.safe_dump(data))
    )


def test_unknown_guard_is_refused() -> None:
    data = yaml.safe_load(MINIMAL)
    data["transitions"][0]["guards"] = ["eligibilty"]
    assert any("unknown guard 'eligibilty'" in p for p in problems_of(yaml.safe_dump(data)))


def test_guard_reading_an_undefined_kind_or_field_is_refused() -> None:
    reads = GuardSpec("needs_score", lambda r, p: Verdict("needs_score"), reads={"score": ("value",)})
    data = yaml.safe_load(MINIMAL)
    data["transitions"][0]["guards"] = ["needs_score"]
    found = problems_of(yaml.safe_dump(data), GuardRegistry([reads]))
    assert any("reads observation kind 'score'" in p for p in found)
    data["observations"] = {"score": {"fields": {"other": {"type": "int"}}}}
    found = problems_of(yaml.safe_dump(data), GuardRegistry([reads]))
    assert any("reads unknown field score.value" in p for p in found)


def test_guard_parameter_missing_from_params_is_refused() -> None:
    spec = GuardSpec("limit", lambda r, p: Verdict("limit"), params=("max_things",))
    data = yaml.safe_load(MINIMAL)
    data["transitions"][0]["guards"] = ["limit"]
    assert any(
        "needs parameter 'max_things'" in p for p in problems_of(yaml.safe_dump(data), GuardRegistry([spec]))
    )
    data["params"] = {"max_things": 2}
    load_text(yaml.safe_dump(data), GuardRegistry([spec]))


def test_two_transitions_for_one_trigger_without_distinguishing_guards_are_ambiguous() -> None:
    data = yaml.safe_load(MINIMAL)
    data["transitions"].append({"trigger": "go", "source": "start", "dest": "done"})
    assert any("ambiguous" in p for p in problems_of(yaml.safe_dump(data)))


def test_same_trigger_with_different_guards_is_allowed() -> None:
    data = yaml.safe_load(MINIMAL)
    data["transitions"].append({"trigger": "go", "source": "start", "dest": "done", "guards": ["fast"]})
    load_text(yaml.safe_dump(data), dummy_guards("fast"))


def test_unknown_field_type_and_kind_keys_are_refused() -> None:
    text = edit(observations={"score": {"fields": {"value": {"type": "integer"}}, "colour": "red"}})
    found = problems_of(text)
    assert any("observations.score.fields.value.type: unknown type 'integer'" in p for p in found)
    assert any("observations.score.colour: unknown key" in p for p in found)


def test_id_and_version_are_required() -> None:
    found = problems_of(edit(id="Bad Id", version="one"))
    assert any(p.startswith("id:") for p in found)
    assert any(p.startswith("version:") for p in found)


def test_yaml_custom_tags_are_refused() -> None:
    found = problems_of(MINIMAL + "extra: !!python/object:os.system {}\n")
    assert any("not valid YAML" in p for p in found)


def test_yaml_aliases_are_refused() -> None:
    text = MINIMAL + "params:\n  a: &x [1, 2]\n  b: *x\n"
    assert any("aliases" in p for p in problems_of(text))


def test_unknown_role_on_a_transition_is_refused() -> None:
    data = yaml.safe_load(MINIMAL)
    data["transitions"][0]["roles"] = ["surgeon"]
    assert any("unknown role 'surgeon'" in p for p in problems_of(yaml.safe_dump(data)))


def test_profile_parameters_must_exist_in_params() -> None:
    found = problems_of(edit(params={"a": 1}, profiles={"p": {"params": {"b": 2}}}))
    assert any("profiles.p.params.b" in p for p in found)


def test_a_state_may_be_planned_care_but_only_an_active_one() -> None:
    data = yaml.safe_load(MINIMAL)
    data["states"]["middle"] = {"planned": True}
    assert load_text(yaml.safe_dump(data), dummy_guards()).states["middle"].planned
    data["states"]["done"] = {"terminal": True, "planned": True}
    data["states"]["start"] = {"initial": True, "planned": "yes"}
    found = problems_of(yaml.safe_dump(data))
    assert any(p.startswith("states.done.planned: only an active state can be planned") for p in found)
    assert any(p.startswith("states.start.planned: expected true or false") for p in found)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_pathways_mark_recovery_and_follow_up_as_planned_care(path: Path) -> None:
    workflow = load_file(path, installed_guards())
    assert {s.name for s in workflow.states.values() if s.planned} == {"recovery", "follow_up"}
