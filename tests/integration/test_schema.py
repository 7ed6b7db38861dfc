"""The schema: created on first use, at the migrations' head, refused when unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from pathway import Clinic, StoreError
from pathway.store import database


def upgrade_to(engine: Engine, revision: str) -> None:
    """Bring a database to an older revision than the head, as a past release left it."""
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def test_code_expects_the_head_revision_of_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == database.SCHEMA_HEAD


def test_an_empty_database_is_created_on_first_use(db_url: str) -> None:
    with Clinic.open(db_url) as clinic:
        assert database.current_revision(clinic.store.engine) == database.SCHEMA_HEAD


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = database.create(db_url)
    try:
        assert database.upgrade(engine) == (None, database.SCHEMA_HEAD)
        assert database.upgrade(engine) == (database.SCHEMA_HEAD, database.SCHEMA_HEAD)
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_full_sync(sqlite_url: str) -> None:
    with Clinic.open(sqlite_url) as clinic, clinic.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_a_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    Clinic.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this pathway knows"):
        Clinic.open(url)


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE patients (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not made by pathway"):
        Clinic.open(url)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Clinic.open(f"sqlite:///{tmp_path / 'nope' / 'p.db'}")


def test_a_postgres_password_never_appears_in_errors() -> None:
    with pytest.raises(StoreError) as caught:
        Clinic.open("postgresql://someone:s3cret@127.0.0.1:1/nowhere")
    assert "s3cret" not in str(caught.value)


def test_a_database_at_an_older_revision_is_upgraded_by_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.create(url)
    upgrade_to(engine, "0001")
    with pytest.raises(StoreError, match="pathway db upgrade"):
        Clinic.open(url)
    assert database.upgrade(engine) == ("0001", database.SCHEMA_HEAD)
    engine.dispose()
    with Clinic.open(url) as clinic:
        clinic.enroll("P1", "cervical-neurotomy", at="2026-01-05")
        assert clinic.outbox()[0]["next_attempt_at"] is None


def test_upgrading_to_0004_keeps_corrections_and_their_append_only_rule(db_url: str) -> None:
    """A correction made at revision 0003 gets its effective time as its entered time, and
    afterwards the observations are as append-only as before."""
    engine = database.create(db_url)
    upgrade_to(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO patients (identifier, created_at) VALUES ('P1', '2026-01-05 00:00:00');"
                if engine.dialect.name == "sqlite"
                else "INSERT INTO patients (identifier, created_at) VALUES ('P1', '2026-01-05')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO enrollments (patient_id, pathway_id, pathway_version, profile, state, "
                "entered_state_at, opened_at, last_event_at, last_seq, version) VALUES "
                "(1, 'cervical-neurotomy', 1, 'medicare', 'referred', :t, :t, :t, 0, 1)"
            ),
            {"t": "2026-01-05 00:00:00.000000"},
        )
        for kind in ("contact_attempt", "contact_attempt"):
            conn.execute(
                text(
                    "INSERT INTO observations (enrollment_id, kind, data, effective_at, recorded_at, "
                    "actor, role, entered_in_error) "
                    "VALUES (1, :kind, :data, :t, :t, 'sam', 'coordinator', :no)"
                ),
                {
                    "kind": kind,
                    "data": '{"outcome": "reached"}',
                    "t": "2026-01-06 00:00:00.000000",
                    "no": False,
                },
            )
        conn.execute(
            text(
                "UPDATE observations SET entered_in_error = :yes, error_reason = 'wrong number', "
                "error_actor = 'sam', error_at = :t WHERE id = 1"
            ),
            {"yes": True, "t": "2026-01-07 00:00:00.000000"},
        )
    assert database.upgrade(engine)[0] == "0003"
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT id, entered_in_error, error_role, error_recorded_at, error_at "
                "FROM observations ORDER BY id"
            )
        ).all()
    (first, second) = rows
    assert first.entered_in_error and first.error_role is None
    assert str(first.error_recorded_at)[:10] == str(first.error_at)[:10] == "2026-01-07"
    assert not second.entered_in_error and second.error_recorded_at is None
    # Still append-only: a marked row cannot change, an unmarked one only by being marked.
    for statement in (
        "UPDATE observations SET error_reason = 'changed' WHERE id = 1",
        "UPDATE observations SET actor = 'someone' WHERE id = 2",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
    with Clinic.open(db_url) as clinic:
        (marked, unmarked) = clinic.observations("P1")
        assert marked.error_recorded_at is not None and not unmarked.entered_in_error
        clinic.correct("P1", unmarked.id, reason="also wrong", at="2026-01-08", role="coordinator")
        assert clinic.observations("P1")[1].error_role == "coordinator"


def test_marking_an_observation_in_error_must_say_role_and_entered_time(db_url: str) -> None:
    """Revision 0004's rule: even in raw SQL, a marking without its role or entered time is
    refused (the one UPDATE the audit trail allows says who, when, why and as what)."""
    with Clinic.open(db_url, actor="t") as clinic:
        clinic.enroll("P1", "cervical-neurotomy", at="2026-01-05", role="coordinator")
        obs = clinic.record(
            "P1", "contact_attempt", {"outcome": "reached"}, at="2026-01-06", role="coordinator"
        )
        engine = clinic.store.engine
        marking = (
            "UPDATE observations SET entered_in_error = :yes, error_reason = 'x', error_actor = 't', "
            "error_at = error_at_value, error_role = {role}, error_recorded_at = {recorded} WHERE id = :id"
        )
        for role, recorded in (("NULL", "recorded_at"), ("'coordinator'", "NULL")):
            statement = marking.replace("error_at_value", "recorded_at").format(role=role, recorded=recorded)
            with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement), {"yes": True, "id": obs.id})
        clinic.correct("P1", obs.id, reason="wrong number", role="coordinator")
        assert clinic.observations("P1")[0].error_role == "coordinator"
