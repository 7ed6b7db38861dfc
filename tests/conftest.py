"""Shared fixtures: real databases (a SQLite file per test, and PostgreSQL when
PATHWAY_TEST_DATABASE_URL names one), never mocks of them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from pathway import Clinic

PG_URL = os.environ.get("PATHWAY_TEST_DATABASE_URL")

# CI runs the same generated examples every time (a red run should mean a regression);
# locally hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    assert PG_URL
    from pathway.store.database import normalize_url

    admin_url = normalize_url(PG_URL)
    name = f"pathway_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a SQLite file, then (when configured) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pathway.db'}"
        return
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    yield from _pg_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pathway.db'}"


@pytest.fixture
def clinic(db_url: str) -> Iterator[Clinic]:
    """A Clinic on each backend, acting as a physician by default."""
    with Clinic.open(db_url, actor="dr.test", role="physician") as c:
        yield c
