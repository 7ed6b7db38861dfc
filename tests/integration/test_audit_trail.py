"""The audit trail (issue 14, items 4 and 5): the bypasses are closed, and what cannot be
closed from inside the database is detected by `pathway audit verify`.

Every event and observation carries a hash of its content and of the previous entry of
its enrollment. `audit verify` recomputes the chains, checks the protective triggers are
there and refuse what they must, and replays the events against the stored state; each
test below makes one kind of tampering and expects verify to name it (exit 1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from pathway import Clinic
from pathway.store import database
from pathway_cli.main import cli
from tests.integration.test_schema import upgrade_to

PATHWAY = "cervical-neurotomy"


def journey(db_url: str) -> None:
    with Clinic.open(db_url, actor="dr.a", role="physician") as clinic:
        clinic.enroll("A1", PATHWAY, at="2026-01-05")
        clinic.advance("A1", "start_evaluation", at="2026-01-06")
        obs = clinic.record("A1", "contact_attempt", {"outcome": "no_response"}, at="2026-01-07")
        clinic.correct("A1", obs.id, reason="wrong patient", at="2026-01-08")
        clinic.record("A1", "contact_attempt", {"outcome": "reached"}, at="2026-01-09")
        clinic.enroll("A2", PATHWAY, at="2026-01-05")


def verify(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", db_url, "audit", "verify", *args])
    return result.exit_code, result.output


def raw(db_url: str, *statements: str) -> None:
    """Run SQL as the database's owner (or a SQLite file's user), outside pathway."""
    engine = create_engine(database.normalize_url(db_url))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def is_pg(db_url: str) -> bool:
    return db_url.startswith("postgresql")


def test_an_untouched_trail_is_intact(db_url: str) -> None:
    journey(db_url)
    code, output = verify(db_url)
    assert code == 0 and "intact" in output and "2 enrollments" in output
    code, output = verify(db_url, "A1", "--json")
    report = json.loads(output)
    assert code == 0 and report["intact"] and report["entries"] == 5  # 2 events, 2 records, 1 correction


def test_sqlite_refuses_insert_or_replace(sqlite_url: str) -> None:
    journey(sqlite_url)
    for statement in (
        "INSERT OR REPLACE INTO events SELECT * FROM events WHERE seq = 2",
        "REPLACE INTO observations SELECT * FROM observations WHERE id = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only: a row may not be replaced"):
            raw(sqlite_url, statement)
    assert verify(sqlite_url)[0] == 0


@pytest.mark.parametrize(
    "statement,refusal",
    [
        ("UPDATE enrollments SET state = 'ablation' WHERE id = 1", "changes only with the event"),
        (
            "UPDATE enrollments SET state = 'ablation', last_seq = last_seq + 1 WHERE id = 1",
            "only with the event",
        ),
        ("DELETE FROM enrollments WHERE id = 2", "never deleted|DELETE on enrollments is not allowed"),
        ("UPDATE patients SET identifier = 'B1' WHERE id = 1", "keeps their identifier"),
        ("DELETE FROM patients WHERE id = 2", "never deleted|DELETE on patients is not allowed"),
        ("UPDATE events SET reason = 'x' WHERE seq = 2", "append-only"),
        ("DELETE FROM observations WHERE id = 2", "append-only"),
    ],
)
def test_the_database_refuses_changes_without_pathway(db_url: str, statement: str, refusal: str) -> None:
    journey(db_url)
    with pytest.raises(DBAPIError, match=refusal):
        raw(db_url, statement)
    assert verify(db_url)[0] == 0


def _without(db_url: str, trigger: str, table: str, *statements: str) -> None:
    """The bypass of one who owns the database: the trigger dropped, the change made."""
    raw(db_url, f"DROP TRIGGER {trigger}" + (f" ON {table}" if is_pg(db_url) else ""), *statements)


def test_a_forged_event_is_found(db_url: str) -> None:
    journey(db_url)
    trigger = "events_append_only" if is_pg(db_url) else "events_no_update"
    _without(db_url, trigger, "events", "UPDATE events SET actor = 'someone else' WHERE seq = 2")
    code, output = verify(db_url)
    assert code == 1
    assert "event 2 (start_evaluation) does not match its hash: changed after it was written" in output
    assert f"the protective trigger {trigger} is missing" in output
    assert "let a change through: an event can be changed" in output
    assert verify(db_url, "A2")[0] == 1  # the missing trigger concerns every patient


def test_a_deleted_observation_is_found(db_url: str) -> None:
    journey(db_url)
    # The first contact attempt (entry 3) and its correction (entry 4) go together.
    _without(db_url, "observations_no_delete", "observations", "DELETE FROM observations WHERE id = 1")
    code, output = verify(db_url, "A1")
    assert code == 1
    assert "the chain has no entry at 3, 4 (a row deleted?)" in output
    assert "is at version 5 but its chain has 3 entries" in output
    assert "observation 2 (contact_attempt) does not match its hash" in output  # its link is gone


def test_an_inserted_event_is_found(db_url: str) -> None:
    """Inserting is what the service may do; an event written outside pathway has no place in
    the chain, and the stored state no longer follows the log."""
    journey(db_url)
    raw(
        db_url,
        'INSERT INTO events (enrollment_id, seq, "trigger", from_state, to_state, actor, role, '
        "effective_at, recorded_at) SELECT enrollment_id, 3, 'schedule_blocks', 'evaluation', "
        "'diagnostic_block', actor, role, effective_at, recorded_at FROM events WHERE seq = 2 "
        "AND enrollment_id = 1",
    )
    code, output = verify(db_url, "A1")
    assert code == 1
    assert "event 3 (schedule_blocks) is not in the hash chain" in output
    assert "its state is evaluation, but its events give diagnostic_block" in output


def test_an_edited_enrollment_is_found(db_url: str) -> None:
    journey(db_url)
    _without(
        db_url,
        "enrollments_follow_events",
        "enrollments",
        "UPDATE enrollments SET state = 'ablation', entered_state_at = last_event_at WHERE id = 1",
    )
    code, output = verify(db_url, "A1")
    assert code == 1
    assert "its state is ablation, but its events give evaluation" in output
    assert "an enrollment's state can change without an event" in output


def test_postgresql_replica_mode_is_found_by_the_hashes(db_url: str) -> None:
    """A superuser's session with session_replication_role = replica skips every trigger;
    the triggers are still there and enabled, so only the chain can tell."""
    if not is_pg(db_url):
        pytest.skip("session_replication_role is PostgreSQL's")
    journey(db_url)
    raw(
        db_url,
        "SET LOCAL session_replication_role = replica",
        'UPDATE observations SET data = \'{"outcome": "reached"}\' WHERE id = 1',
    )
    code, output = verify(db_url, "A1")
    assert code == 1
    assert "observation 1 (contact_attempt) does not match its hash" in output
    assert "trigger" not in output  # the protections themselves are intact


def test_postgresql_a_disabled_trigger_is_found(db_url: str) -> None:
    if not is_pg(db_url):
        pytest.skip("ALTER TABLE ... DISABLE TRIGGER is PostgreSQL's")
    journey(db_url)
    raw(db_url, "ALTER TABLE events DISABLE TRIGGER events_append_only")
    code, output = verify(db_url)
    assert code == 1 and "the protective trigger events_append_only is disabled" in output


def test_existing_databases_get_the_chain_by_the_migration(db_url: str) -> None:
    """A database made at revision 0004 (before the chain) is chained by `db upgrade`, and
    from then on tampering with its old rows shows."""
    engine = database.create(db_url)
    upgrade_to(engine, "0004")
    t = "2026-01-05 00:00:00.000000"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO patients (identifier, created_at) VALUES ('OLD1', :t)"), {"t": t})
        conn.execute(
            text(
                "INSERT INTO enrollments (patient_id, pathway_id, pathway_version, profile, state, "
                "entered_state_at, opened_at, last_event_at, last_seq, version) VALUES "
                "(1, 'cervical-neurotomy', 1, 'medicare', 'evaluation', :t2, :t, :t2, 2, 3)"
            ),
            {"t": t, "t2": "2026-01-06 00:00:00.000000"},
        )
        for seq, trigger, source, dest, when in (
            (1, "enroll", None, "referred", t),
            (2, "start_evaluation", "referred", "evaluation", "2026-01-06 00:00:00.000000"),
        ):
            conn.execute(
                text(
                    'INSERT INTO events (enrollment_id, seq, "trigger", from_state, to_state, actor, role, '
                    "effective_at, recorded_at, payload) VALUES (1, :seq, :trigger, :source, :dest, 'sam', "
                    "'coordinator', :when, :when, :payload)"
                ),
                {
                    "seq": seq,
                    "trigger": trigger,
                    "source": source,
                    "dest": dest,
                    "when": when,
                    "payload": '{"profile": "medicare"}' if seq == 1 else None,
                },
            )
        conn.execute(
            text(
                "INSERT INTO observations (enrollment_id, kind, data, effective_at, recorded_at, actor, "
                "role, entered_in_error) VALUES (1, 'contact_attempt', '{\"outcome\": \"reached\"}', :t, :t, "
                "'sam', 'coordinator', :no)"
            ),
            {"t": "2026-01-07 00:00:00.000000", "no": False},
        )
    assert database.upgrade(engine) == ("0004", database.SCHEMA_HEAD)
    engine.dispose()
    code, output = verify(db_url)
    assert code == 0 and "3 entries" in output, output
    with Clinic.open(db_url, actor="sam") as clinic:  # the chain goes on from the backfill
        clinic.record("OLD1", "contact_attempt", {"outcome": "no_response"}, at="2026-01-08")
    assert verify(db_url)[0] == 0
    trigger = "events_append_only" if is_pg(db_url) else "events_no_update"
    _without(db_url, trigger, "events", "UPDATE events SET actor = 'x' WHERE seq = 1")
    code, output = verify(db_url)
    assert code == 1 and "event 1 (enroll) does not match its hash" in output


# --- the least-privilege role (PostgreSQL) ---------------------------------------------------


@pytest.fixture
def app_role(db_url: str) -> Iterator[tuple[str, str]]:
    """(the owner's URL, the URL of a least-privilege role made by `pathway db create-role`)."""
    if not is_pg(db_url):
        pytest.skip("roles are PostgreSQL's; a SQLite file is protected by its file permissions")
    name = f"pathway_app_{uuid.uuid4().hex[:8]}"
    journey(db_url)
    result = CliRunner().invoke(cli, ["--db", db_url, "db", "create-role", name])
    assert result.exit_code == 0 and f"created role {name}" in result.output, result.output
    again = CliRunner().invoke(cli, ["--db", db_url, "db", "create-role", name])
    assert again.exit_code == 0 and "granted again" in again.output
    base = database.normalize_url(db_url)
    scheme, rest = base.split("://", 1)
    as_role = f"{scheme}://{name}@{rest.split('@', 1)[1]}"
    try:
        yield db_url, as_role
    finally:
        raw(db_url, f'DROP OWNED BY "{name}"', f'DROP ROLE "{name}"')


def test_the_service_role_runs_every_command(app_role: tuple[str, str], tmp_path: Path) -> None:
    _, as_role = app_role
    with Clinic.open(as_role, actor="svc", role="physician") as clinic:
        clinic.enroll("S1", PATHWAY, at="2026-01-05", name="Sam")
        clinic.advance("S1", "start_evaluation", at="2026-01-06")
        obs = clinic.record("S1", "contact_attempt", {"outcome": "no_response"}, at="2026-01-07")
        clinic.correct("S1", obs.id, reason="wrong", at="2026-01-08")
        clinic.advance("S1", "decline", at="2026-01-09")
        clinic.reopen("S1", reason="wrong patient", at="2026-01-10")
        csv = tmp_path / "r.csv"
        csv.write_text("patient,referred_at\nS2,2026-01-05\n")
        assert clinic.import_referrals(csv).imported == 1
        clinic.set_setting("patient-system", "https://clinic.example.org/mrn")
        assert clinic.report_rtt(as_of="2026-02-01").to_dict()["incomplete"] >= 2
    code, output = verify(as_role)
    assert code == 0 and "intact" in output, output


@pytest.mark.parametrize(
    "statement,refusal",
    [
        ("UPDATE events SET reason = 'x'", "permission denied"),
        ("DELETE FROM events", "permission denied"),
        ("DELETE FROM observations", "permission denied"),
        ("DELETE FROM stays", "permission denied"),
        ("TRUNCATE events", "permission denied"),
        ("TRUNCATE enrollments", "permission denied"),
        ("ALTER TABLE events DISABLE TRIGGER events_append_only", "must be owner"),
        ("DROP TRIGGER events_append_only ON events", "must be owner"),
        ("SET session_replication_role = replica", "permission denied"),
        ("UPDATE alembic_version SET version_num = '0001'", "permission denied"),
    ],
)
def test_the_service_role_cannot_bypass_the_trail(
    app_role: tuple[str, str], statement: str, refusal: str
) -> None:
    owner, as_role = app_role
    with pytest.raises(DBAPIError, match=refusal):
        raw(as_role, statement)
    assert verify(owner)[0] == 0
