"""Hostile FHIR referrals: `pathway import fhir FILE` fed malformed JSON, JSON of the wrong
shape, other resources, and ServiceRequests and Bundles with broken or extreme fields.

Every case ends in one clear line and a non-zero exit (or, when a mutation happens to
leave a valid referral, one enrollment), never a traceback, and a refused file leaves
the database unchanged. About 450 generated cases, run through click's CliRunner.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from pathway import Catalog, Clinic
from pathway.interop import fhir
from pathway_cli.main import cli

CASES = settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLAN = fhir.PLAN_DEFINITION_BASE + "/"
TABLES = ("patients", "enrollments", "events", "observations", "outbox")
PATIENT_URL = "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a11"


def service_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "instantiatesCanonical": [PLAN + "cervical-neurotomy|1"],
        "subject": {"identifier": {"system": fhir.PATIENT_SYSTEM, "value": "R1"}},
        "authoredOn": "2026-01-06T09:30:00+01:00",
    }
    request.update(changes)
    return request


def referral_bundle(patient: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": PATIENT_URL, "resource": patient},
            {"fullUrl": "urn:uuid:5b0f3a5e-0a55-4d1e-8d4c-0d6f3c1b2a12", "resource": request},
        ],
    }


def patient_resource(**changes: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-9"}],
        "name": [{"given": ["Bea"], "family": "Example"}],
    }
    patient.update(changes)
    return patient


# --- running one file ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    """A SQLite database with one enrollment already in it, shared by every case."""
    catalog = Catalog.discover()
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        # Parsing the shipped pathways' YAML is most of a command's start-up and not what is
        # tested here: every command gets the same (immutable) catalog.
        patch.setattr(Catalog, "discover", classmethod(lambda cls, extra_dirs=(), guards=None: catalog))
        url = f"sqlite:///{Path(folder) / 'fhir.db'}"
        with Clinic.open(url, actor="setup", role="physician") as clinic:
            clinic.enroll("KNOWN", "cervical-neurotomy", at="2026-01-05")
        yield url


def counts(url: str) -> tuple[int, ...]:
    with Clinic.open(url) as clinic, clinic.store.read() as tx:
        return tuple(int(tx.conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES)


class Named:
    """File content shown by its name in hypothesis' reports (some are a megabyte)."""

    def __init__(self, name: str, content: str) -> None:
        self.name = name
        self.content = content

    def __repr__(self) -> str:
        return f"<{self.name}>"


def import_file(url: str, content: str | bytes | Named, as_json: bool = False) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "referral.json"
        if isinstance(content, Named):
            path.write_text(content.content, encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        args = ["--db", url, "--role", "physician", "import", "fhir", str(path)]
        return CliRunner().invoke(cli, [*args, "--json"] if as_json else args)


def assert_clean_ending(result: Result, as_json: bool) -> None:
    """No escaped exception, and the outcome said in one line (plus the JSON body with --json)."""
    # CliRunner keeps an escaped exception in result.exception (a console would show its
    # traceback); the command's own error exits are SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        first = result.stdout.split(" ", 1)[-1]
        assert as_json or result.stdout.startswith("enrolled ") or first.startswith("is already enrolled in ")
        return
    assert result.exit_code in (1, 3, 4), result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0], lines[0]
    assert len(lines[0]) < 1000, "a message should name the problem, not repeat the input"
    if as_json:
        body = json.loads(result.stdout)
        assert body["message"] and body["error"]


def check_refused(url: str, content: str | bytes | Named, as_json: bool = False) -> None:
    """The file is refused with one clear line and nothing is written."""
    before = counts(url)
    result = import_file(url, content, as_json)
    assert_clean_ending(result, as_json)
    assert result.exit_code != 0, result.output
    assert counts(url) == before


def check_refused_or_enrolled(url: str, data: Any, as_json: bool = False) -> None:
    """A mutated referral may still be valid: then exactly one enrollment more, else nothing."""
    before = counts(url)
    result = import_file(url, json.dumps(data), as_json)
    event(f"exit {result.exit_code}")
    assert_clean_ending(result, as_json)
    after = counts(url)
    if result.exit_code == 0:
        # Enrolled: exactly one more. The same referral sent again: nothing changed.
        # (an identifier has no spaces, so it cannot make either message look like the other)
        enrolled = json.loads(result.stdout)["enrolled"] if as_json else " is already " not in result.stdout
        grew = 1 if enrolled else 0
        assert after[1] == before[1] + grew and after[2] == before[2] + grew
    else:
        assert after == before


# --- what the files hold ---------------------------------------------------------------------

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"extension": [value]} if i % 2 else [value]
    return value


VALID = json.dumps(service_request())
not_json = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(0, len(VALID) - 1).map(lambda n: VALID[:n]),  # cut short
    st.sampled_from(
        [
            "",
            " \n\t",
            "\ufeff" + VALID,  # a byte-order mark
            VALID + "}",
            VALID.replace('"', "'"),
            '{"resourceType": "ServiceRequest", "x": 1e999999}',
            '{"resourceType": NaN}',
            "\x00" * 10,
            '{"resourceType": "ServiceRequest"\x00}',
        ]
    ),
    st.sampled_from(
        [
            Named("unclosed braces", "{" * 100_000),
            Named("nested deeper than the parser recurses", "[" * 100_000 + "]" * 100_000),
            Named("an integer of 5000 digits", '{"resourceType": "ServiceRequest", "x": ' + "9" * 5000 + "}"),
            Named("a 1 MB string", json.dumps(service_request(authoredOn="x" * 1_000_000))),
            Named(
                "a 1 MB identifier",
                json.dumps(service_request(subject={"identifier": {"value": "R" * 1_000_000}})),
            ),
        ]
    ),
    st.binary(max_size=50).map(lambda b: b"\xff\xfe" + b),  # not UTF-8
)

RESOURCE_TYPES = [
    "Patient",
    "Observation",
    "OperationOutcome",
    "Parameters",
    "PlanDefinition",
    "Task",
    "servicerequest",
    " ServiceRequest",
    "ServiceRequest ",
    "Service Request",
    "",
    "Resource",
    "DomainResource",
    "Element",
]
other_resource = st.one_of(
    st.builds(
        lambda rtype, fields: {**fields, "resourceType": rtype},
        st.sampled_from(RESOURCE_TYPES) | json_value,
        st.dictionaries(st.text(max_size=10), json_value, max_size=4),
    ),
    st.builds(  # a Bundle without exactly one ServiceRequest
        lambda kind, requests, others: {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {"fullUrl": f"urn:uuid:{i}", "resource": r}
                for i, r in enumerate([service_request()] * requests + others)
            ],
        },
        st.sampled_from(["collection", "transaction", "searchset", "document", "nonsense"]),
        st.sampled_from([0, 2, 3]),
        st.lists(
            st.sampled_from(
                [
                    patient_resource(),
                    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
                ]
            ),
            max_size=3,
        ),
    ),
)

huge = st.sampled_from(["x" * 20_000, "R" * 65, "9" * 4000, "\u202e" * 1000, "a\x00b", " R1 "])
absurd_dates = st.sampled_from(
    [
        "0000-01-01",
        "0001-01-01T00:00:00Z",
        "1899-12-31",
        "2201-01-01",
        "9999-12-31T23:59:59+14:00",
        "2026-02-30",
        "2026-13-01",
        "2026-01-06T25:61:61Z",
        "2026-01-06T09:30:00+25:00",
        "2026",
        "2026-02",
        "-2026-01-06",
        "2026-01-06T09:30",
        "20260106",
        "yesterday",
        "",
    ]
)
status_codes = st.sampled_from(
    [
        "draft",
        "on-hold",
        "revoked",
        "completed",
        "entered-in-error",
        "unknown",
        "ACTIVE",
        " active",
        "active\n",
    ]
)
identifier = st.fixed_dictionaries(
    {},
    optional={
        "system": st.sampled_from([fhir.PATIENT_SYSTEM, "urn:oid:1.2.3", ""]) | json_value,
        "value": st.sampled_from(["R1", "", " ", "R 1", "../etc/passwd", "'; DROP TABLE events; --"])
        | huge
        | json_value,
    },
)
subject = st.one_of(
    st.just({}),
    st.builds(lambda i: {"identifier": i}, identifier),
    st.sampled_from(
        [{"reference": "#p"}, {"reference": "Patient/1"}, {"reference": ""}, {"display": "someone"}]
    ),
    json_value,
)
hostile_field = st.one_of(
    st.tuples(st.just("status"), status_codes | json_value),
    st.tuples(st.just("intent"), st.sampled_from(["plan", "proposal", "ORDER", ""]) | json_value),
    st.tuples(st.just("subject"), subject),
    st.tuples(st.just("authoredOn"), absurd_dates | json_value),
    st.tuples(
        st.just("instantiatesCanonical"),
        st.lists(
            st.sampled_from(
                [
                    PLAN + "hip-replacement",
                    PLAN + "lumbar-neurotomy",
                    PLAN + "cervical-neurotomy|999",
                    PLAN,
                    "http://elsewhere/PlanDefinition/x",
                    "x" * 5000,
                ]
            ),
            max_size=40,
        )
        | json_value,
    ),
    st.tuples(
        st.just("contained"),
        st.lists(
            st.sampled_from(
                [
                    {"resourceType": "Patient", "id": "p"},
                    {"resourceType": "Patient", "identifier": [{"value": "C1"}]},
                    {"resourceType": "Foo", "id": "p"},
                    {"resourceType": None},
                    {"resourceType": ["Patient"]},
                    {},
                ]
            ),
            max_size=3,
        )
        | json_value,
    ),
    st.tuples(
        st.sampled_from(["extension", "modifierExtension", "meta", "code", "note", "identifier", "text"]),
        st.integers(1, 400).map(nested) | json_value,
    ),
    st.tuples(
        st.sampled_from(["requester", "priority", "id", "implicitRules", "language"]), json_value | huge
    ),
    st.tuples(st.text(min_size=1, max_size=12), json_value),  # a field FHIR does not have
)


def broken(base: dict[str, Any], changes: list[tuple[str, Any]], dropped: list[str]) -> dict[str, Any]:
    result = dict(base)
    for name, value in changes:
        result[name] = value
    for name in dropped:
        result.pop(name, None)
    return result


# --- the tests -------------------------------------------------------------------------------


@CASES
@given(content=not_json, as_json=st.booleans())
def test_a_file_that_is_not_json_is_refused_clearly(
    db_url: str, content: str | bytes | Named, as_json: bool
) -> None:
    check_refused(db_url, content, as_json)


@CASES
@given(data=json_value | other_resource, as_json=st.booleans())
def test_json_that_is_not_a_referral_is_refused_clearly(db_url: str, data: Any, as_json: bool) -> None:
    check_refused(db_url, json.dumps(data), as_json)


@CASES
@given(
    changes=st.lists(hostile_field, min_size=1, max_size=4),
    dropped=st.lists(
        st.sampled_from(["status", "intent", "subject", "authoredOn", "resourceType"]), max_size=2
    ),
    as_json=st.booleans(),
)
def test_a_service_request_with_broken_fields_ends_cleanly(
    db_url: str, changes: list[tuple[str, Any]], dropped: list[str], as_json: bool
) -> None:
    check_refused_or_enrolled(db_url, broken(service_request(), changes, dropped), as_json)


@CASES
@given(
    patient_changes=st.lists(
        st.tuples(st.sampled_from(["identifier", "name", "id", "birthDate", "gender"]), json_value | huge),
        max_size=3,
    ),
    request_changes=st.lists(hostile_field, max_size=2),
    reference=st.sampled_from([PATIENT_URL, "urn:uuid:elsewhere", "Patient/x", ""]),
)
def test_a_referral_bundle_with_broken_parts_ends_cleanly(
    db_url: str,
    patient_changes: list[tuple[str, Any]],
    request_changes: list[tuple[str, Any]],
    reference: str,
) -> None:
    request = broken(service_request(subject={"reference": reference}), request_changes, [])
    patient = broken(patient_resource(), patient_changes, [])
    check_refused_or_enrolled(db_url, referral_bundle(patient, request))


@CASES
@given(
    name=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "text": st.text(max_size=300) | huge,
                "given": st.lists(st.text(max_size=30), max_size=3),
                "family": st.text(max_size=30),
            },
        ),
        max_size=2,
    ),
    value=st.text(max_size=70) | huge,
)
def test_any_patient_identifier_and_name_are_enrolled_or_refused_clearly(
    db_url: str, name: list[dict[str, Any]], value: str
) -> None:
    patient = patient_resource(identifier=[{"system": fhir.PATIENT_SYSTEM, "value": value}], name=name)
    check_refused_or_enrolled(
        db_url, referral_bundle(patient, service_request(subject={"reference": PATIENT_URL}))
    )
