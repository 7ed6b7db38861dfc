"""The sections a workflow file declares for reports and exports: every shipped (and test)
file passes the JSON Schema, and the loader refuses names the rest of the file lacks."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from pathway.definitions.loader import load_text
from pathway.definitions.schema import workflow_schema
from pathway.domain.guards import installed_guards
from pathway.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*(ROOT / "workflows").glob("*.yaml"), *(ROOT / "tests" / "pathways").glob("*.yaml")])
CERVICAL = (ROOT / "workflows" / "cervical-neurotomy.yaml").read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_workflow_file_passes_the_json_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), workflow_schema())


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, installed_guards())
    return list(caught.value.problems)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("  start: referred\n", "  start: refered\n", "rtt.start: unknown state 'refered'"),
        (
            "stop_triggers: [perform_ablation]",
            "stop_triggers: [perform_ablaton]",
            "unknown trigger 'perform_ablaton'",
        ),
        (
            "  standard_weeks: 18",
            "  standard_weeks: 0",
            "rtt.standard_weeks: expected a whole number from 1 to 520",
        ),
        ("  at_risk_weeks: 16", "  at_risk_weeks: 19", "rtt.at_risk_weeks: 19 is after the 18-week standard"),
        (
            "measure: {kind: follow_up, field: nrs}",
            "measure: {kind: follow_up, field: pgi}",
            "unknown field 'pgi'",
        ),
        (
            "measure: {kind: follow_up, field: nrs}",
            "measure: {kind: safety, field: pregnant}",
            "is not a number",
        ),
        (
            "  target_day: 182",
            "  target_day: 300",
            "outcome.target_day: day 300 is outside the window 150-240",
        ),
        ("  months: [3, 6, 12]", "  months: [6, 3]", "follow_up.months: expected months in increasing order"),
        (
            "  routine: [recovery, follow_up]",
            "  routine: [recovry]",
            "worklist.routine: unknown state 'recovry'",
        ),
        (
            "    baseline: [nrs, ndi]\n",
            "    baseline: [nrs, ndi, onset_date]\n",
            "baseline.onset_date is not a number",
        ),
        ("      laterality: side\n", "      laterality: sides\n", "unknown field 'sides' of block"),
        ("    completed: true\n", "    completed: true\n    optional: true\n", "only an active stage"),
    ],
)
def test_a_section_naming_what_the_file_lacks_is_refused(old: str, new: str, problem: str) -> None:
    assert old in CERVICAL
    found = problems(CERVICAL.replace(old, new, 1))
    assert any(problem in p for p in found), found


def test_a_score_without_a_code_is_refused() -> None:
    text = CERVICAL.replace(
        "    follow_up: [nrs, ndi, pgic]\n", "    follow_up: [nrs, ndi, pgic, post_nrs]\n"
    )
    text = text.replace("    baseline: [nrs, ndi]\n", "    baseline: [nrs, ndi]\n    block: [post_nrs]\n")
    assert any("no code for score 'post_nrs'" in p for p in problems(text))


def test_the_sections_are_optional_and_their_absence_means_not_reported() -> None:
    start = CERVICAL.index("\n# What the engine's reports")
    workflow = load_text(CERVICAL[:start].replace("default: true", "default: false"), installed_guards())
    declared = workflow.declarations
    assert (declared.rtt, declared.outcome, declared.follow_up, declared.simulation) == (
        None,
        None,
        None,
        None,
    )
    assert declared.worklist.routine == ("recovery", "follow_up")  # the planned states, by default
    assert workflow.default is False
