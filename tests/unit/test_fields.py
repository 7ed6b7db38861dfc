"""Observation values: validated against their kind, every problem named at once."""

from __future__ import annotations

from datetime import date

import pytest

from pathway.domain.definition import FieldSpec, KindSpec
from pathway.domain.fields import decode, parse_assignments, validate
from pathway.errors import InvalidInput

LEVELS = ("C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1")

KIND = KindSpec(
    name="block",
    roles=("physician",),
    fields={
        "side": FieldSpec("side", "enum", values=("left", "right", "bilateral")),
        "levels": FieldSpec("levels", "levels", values=LEVELS),
        "pre_nrs": FieldSpec("pre_nrs", "int", minimum=0, maximum=10),
        "relief_hours": FieldSpec("relief_hours", "number", minimum=0),
        "flag": FieldSpec("flag", "bool"),
        "onset": FieldSpec("onset", "date"),
        "red_flags": FieldSpec("red_flags", "list", values=("fracture", "tumour")),
        "note": FieldSpec("note", "text", required=False),
    },
)

GOOD = {
    "side": "right",
    "levels": "C4-5,C5-6",
    "pre_nrs": "7",
    "relief_hours": "2.5",
    "flag": "no",
    "onset": "2025-06-01",
    "red_flags": "",
}


def problems(values: dict[str, object]) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        validate(KIND, values)
    return list(caught.value.problems)


def test_text_values_from_the_command_line_are_converted() -> None:
    stored = validate(KIND, GOOD)
    assert stored == {
        "side": "right",
        "levels": ["C4-5", "C5-6"],
        "pre_nrs": 7,
        "relief_hours": 2.5,
        "flag": False,
        "onset": "2025-06-01",
        "red_flags": [],
    }
    assert decode(KIND, stored)["onset"] == date(2025, 6, 1)


def test_a_pain_score_range_is_rejected_with_advice() -> None:
    found = problems({**GOOD, "pre_nrs": "2-8"})
    assert len(found) == 1
    assert found[0].startswith("pre_nrs:") and "not a range" in found[0]


@pytest.mark.parametrize("value", ["11", "-1", "7.5", "seven", True, 7.0, ""])
def test_out_of_range_or_malformed_integers_are_rejected(value: object) -> None:
    assert problems({**GOOD, "pre_nrs": value})[0].startswith("pre_nrs:")


@pytest.mark.parametrize("value", ["0", "10", 0, 10])
def test_integer_bounds_are_inclusive(value: object) -> None:
    assert validate(KIND, {**GOOD, "pre_nrs": value})["pre_nrs"] == int(value)


def test_a_level_outside_the_region_is_rejected() -> None:
    assert problems({**GOOD, "levels": "C4-5,L4-5"})[0].startswith("levels:")


def test_levels_may_not_be_empty_but_a_list_may() -> None:
    assert problems({**GOOD, "levels": ""})[0].startswith("levels:")
    assert validate(KIND, {**GOOD, "red_flags": []})["red_flags"] == []


def test_level_case_is_normalised() -> None:
    assert validate(KIND, {**GOOD, "levels": "c4-5"})["levels"] == ["C4-5"]


@pytest.mark.parametrize("value,expected", [("true", True), ("yes", True), ("No", False), (False, False)])
def test_booleans_accept_true_false_yes_no(value: object, expected: bool) -> None:
    assert validate(KIND, {**GOOD, "flag": value})["flag"] is expected


def test_every_problem_is_reported_together() -> None:
    found = problems({**GOOD, "side": "up", "pre_nrs": "99", "colour": "red", "onset": "yesterday"})
    names = sorted(p.split(":")[0] for p in found)
    assert names == ["colour", "onset", "pre_nrs", "side"]


def test_missing_required_fields_are_named() -> None:
    values = dict(GOOD)
    del values["side"]
    assert problems(values) == ["side: required (one of left, right, bilateral)"]


def test_optional_text_may_be_left_out() -> None:
    assert "note" not in validate(KIND, GOOD)


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5"])
def test_numbers_must_be_finite_and_in_range(value: str) -> None:
    assert problems({**GOOD, "relief_hours": value})[0].startswith("relief_hours:")


def test_assignments_must_have_an_equals_sign() -> None:
    assert parse_assignments(["nrs=7", "red_flags="]) == {"nrs": "7", "red_flags": ""}
    with pytest.raises(InvalidInput):
        parse_assignments(["nrs7"])
    with pytest.raises(InvalidInput):
        parse_assignments(["nrs=7", "nrs=8"])


@pytest.mark.parametrize(
    ("field", "text", "stored"),
    [
        ("relief_hours", "2.5", 2.5),
        ("relief_hours", ".5", 0.5),
        ("relief_hours", "3.", 3.0),
        ("relief_hours", "1e1", 10.0),
        ("relief_hours", " +4 ", 4.0),
        ("relief_hours", "\uff12", None),  # a full-width 2: Python's float() would read it
        ("relief_hours", "1_000", None),  # float() reads this too
        ("relief_hours", "2,5", None),
        ("relief_hours", "nan", None),
        ("pre_nrs", "\u0667", None),  # an Arabic-Indic 7
        ("pre_nrs", "7", 7),
        ("onset", "\uff12025-06-01", None),
    ],
)
def test_numbers_and_dates_are_read_in_ascii_digits_only(field: str, text: str, stored: object) -> None:
    values = {**GOOD, field: text}
    if stored is None:
        with pytest.raises(InvalidInput, match=f"{field}: the value given is not allowed"):
            validate(KIND, values)
    else:
        assert validate(KIND, values)[field] == stored
