"""The schema: created on first use, at the migrations' head, refused when unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from pathway import Clinic, StoreError
from pathway.store import database


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
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.create(url)
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with pytest.raises(StoreError, match="pathway db upgrade"):
        Clinic.open(url)
    assert database.upgrade(engine) == ("0001", database.SCHEMA_HEAD)
    engine.dispose()
    with Clinic.open(url) as clinic:
        clinic.enroll("P1", "cervical-neurotomy", at="2026-01-05")
        assert clinic.outbox()[0]["next_attempt_at"] is None
