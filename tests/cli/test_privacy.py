"""Privacy (issue 14, item 10): no error repeats a patient identifier, a name or free text.

Errors reach terminals, logs and tickets; what they say is the field and the rule, never
the value. The database's own messages are cut to their first line (PostgreSQL's DETAIL
and CONTEXT lines quote the row).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from pathway import Clinic, PathwayError
from pathway.store.tables import patients
from pathway_cli.main import cli

SECRET = "MRN-4417"
PATHWAY = "cervical-neurotomy"


def run(db: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", db, *args])
    return result.exit_code, result.output


def test_errors_about_a_patient_do_not_name_them(db_url: str) -> None:
    code, _ = run(
        db_url, "enroll", SECRET, "--pathway", PATHWAY, "--name", "Jane Q Public", "--at", "2026-01-05"
    )
    assert code == 0
    for args in (
        ("enroll", SECRET, "--pathway", PATHWAY),  # already enrolled
        ("status", SECRET + "X"),  # unknown
        ("status", SECRET + "\n"),  # a control character: refused, not stored
        ("advance", SECRET, "approve_ablation"),  # refused by the guards
        ("advance", SECRET, "no_such_trigger"),
        ("record", SECRET, "baseline", "--set", "nrs=eleven"),
    ):
        code, output = run(db_url, *args)
        assert code != 0, args
        assert SECRET not in output and "Jane" not in output, (args, output)


def test_a_second_correction_does_not_repeat_the_first_reason(db_url: str) -> None:
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic:
        clinic.enroll(SECRET, PATHWAY, at="2026-01-05")
        clinic.advance(SECRET, "start_evaluation", at="2026-01-06")
        obs = clinic.record(SECRET, "contact_attempt", {"outcome": "no_response"}, at="2026-01-07")
        clinic.correct(SECRET, obs.id, reason="entered for Mrs Smith by mistake", at="2026-01-08")
    code, output = run(db_url, "correct", SECRET, str(obs.id), "--reason", "again")
    assert code == 1 and "already marked entered-in-error" in output
    assert "Smith" not in output and SECRET not in output


def test_database_errors_keep_their_details_to_themselves(db_url: str) -> None:
    """PostgreSQL's unique violation says DETAIL: Key (identifier)=(MRN-4417) already exists."""
    with Clinic.open(db_url) as clinic:
        clinic.enroll(SECRET, PATHWAY, at="2026-01-05")
        with pytest.raises(PathwayError) as caught, clinic.store.write() as tx:
            tx.conn.execute(
                insert(patients).values(identifier=SECRET, created_at=clinic.history(SECRET)[0].recorded_at)
            )
    message = str(caught.value)
    assert SECRET not in message and "DETAIL" not in message and "\n" not in message
