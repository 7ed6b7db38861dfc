"""Hostile input: malformed and extreme values end in a clear error, never a traceback,
and leave the database unchanged. About 1,500 generated cases per run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from pathway import Clinic, DefinitionError, InvalidInput, PathwayError
from pathway.definitions.loader import load_text
from pathway.domain.guards import installed_guards
from pathway.domain.timeutil import to_utc
from pathway_cli.main import cli

FAST = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

weird_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "2-8",
            "7.5",
            "NaN",
            "inf",
            "-1",
            "1e400",
            "",
            " ",
            "yes",
            "C4-5,,C5-6",
            "\x00",
            "'; DROP TABLE events; --",
            "C4-5" * 200,
            "true",
            "99999999999",
        ]
    ),
)
weird_value = st.one_of(
    weird_text,
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(weird_text, max_size=4),
)


@pytest.fixture(scope="module")
def clinic() -> Iterator[Clinic]:
    folder = tempfile.TemporaryDirectory()
    with Clinic.open(f"sqlite:///{Path(folder.name) / 'h.db'}", actor="h", role="physician") as c:
        c.enroll("H1", "cervical-neurotomy", at="2026-01-05")
        yield c
    folder.cleanup()


def counts(clinic: Clinic) -> tuple[int, ...]:
    with clinic.store.read() as tx:
        return tuple(
            int(tx.conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("patients", "enrollments", "events", "observations", "outbox")
        )


KINDS = [
    "baseline",
    "conservative_care",
    "imaging",
    "block",
    "safety",
    "ablation",
    "follow_up",
    "contact_attempt",
    "unknown_kind",
]


@FAST
@given(
    kind=st.sampled_from(KINDS),
    values=st.dictionaries(
        st.sampled_from(
            [
                "nrs",
                "ndi",
                "pgic",
                "levels",
                "side",
                "weeks",
                "onset_date",
                "red_flags",
                "outcome",
                "pre_nrs",
                "relief_hours",
                "extra",
            ]
        )
        | weird_text,
        weird_value,
        max_size=6,
    ),
)
def test_record_with_hostile_values_fails_cleanly_and_stores_nothing(
    clinic: Clinic, kind: str, values: dict[str, Any]
) -> None:
    before = counts(clinic)
    try:
        clinic.record("H1", kind, values, at="2026-01-06")
    except PathwayError as error:
        assert str(error)
        assert counts(clinic) == before
    else:  # it was valid after all: one observation and one message more
        after = counts(clinic)
        assert after[3] == before[3] + 1


@FAST
@given(raw=weird_text | st.datetimes().map(str) | st.dates().map(str))
def test_at_values_parse_to_utc_or_say_what_is_expected(raw: str) -> None:
    try:
        parsed = to_utc(raw)
    except InvalidInput as error:
        assert "--at" in str(error)
    else:
        assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@FAST
@given(patient=weird_text)
def test_patient_identifiers_are_accepted_or_refused_clearly(clinic: Clinic, patient: str) -> None:
    before = counts(clinic)
    try:
        clinic.status(patient)
    except PathwayError as error:
        assert str(error)
    assert counts(clinic) == before


@FAST
@given(rows=st.lists(st.lists(weird_text, min_size=1, max_size=6), max_size=5))
def test_csv_rows_are_validated_without_crashing(
    clinic: Clinic, rows: list[list[str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("csv") / "r.csv"
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient", "referred_at", "pathway"])
        writer.writerows(rows)
    before = counts(clinic)
    try:
        report = clinic.import_referrals(path)
    except PathwayError as error:
        assert str(error)
        assert counts(clinic) == before
    else:
        assert report.rows == len(rows) or report.problems
        if report.problems:  # a file with any bad row writes nothing
            assert report.imported == 0
            assert counts(clinic) == before


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@FAST
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "version",
                "roles",
                "states",
                "transitions",
                "observations",
                "params",
                "profiles",
                "region",
            ]
        ),
        yaml_values,
        max_size=9,
    )
)
def test_malformed_workflow_structures_are_refused_with_locations(data: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_text(yaml.safe_dump(data), installed_guards())
    assert caught.value.problems


@settings(max_examples=60, deadline=None)
@given(
    raw=st.text(max_size=200)
    | st.sampled_from(
        [
            "!!python/object/apply:os.system ['echo pwned']",
            "a: &a [*a]",
            "a: &x [1]\nb: [*x, *x, *x]",
            "{{{{",
            "- - - -",
            "id: x\nversion: !!binary aGk=\n",
        ]
    )
)
def test_any_text_as_a_workflow_file_is_refused_or_loaded_never_executed(raw: str) -> None:
    try:
        load_text(raw, installed_guards())
    except DefinitionError as error:
        assert error.problems


CLI_DB = f"sqlite:///{tempfile.mkdtemp()}/cli.db"


@settings(max_examples=120, deadline=None)
@given(args=st.lists(weird_text.filter(lambda s: "\x00" not in s), min_size=1, max_size=4))
def test_the_cli_never_shows_a_traceback(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--db", CLI_DB, "record", "P1", *args])
    asked_for_help = bool({"--help", "-h"} & set(args))
    assert result.exit_code in (1, 2, 3, 4) or (asked_for_help and result.exit_code == 0)
    # Only a clean exit: any other exception means click's catch-all was reached.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
