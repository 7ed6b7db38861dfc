"""The service's token cache on PostgreSQL (`Store.cache_tokens`): a known token costs
no query, and every way a token stops working, made by another process or by hand in
SQL, is seen within moments (the identity tables notify; revision 0008). While the
cache is not listening, every lookup goes to the database. On SQLite there is none."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, text, update

from pathway import Clinic
from pathway.domain.timeutil import utcnow
from pathway.errors import NotAuthenticated
from pathway.store import database
from pathway.store.tables import tokens, users
from tests.conftest import PG_URL, _pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    yield from _pg_database()


def refused_soon(check: Callable[[], object], match: str, within: float = 3.0) -> float:
    """Seconds until `check()` raises NotAuthenticated saying `match` (fails after `within`:
    until the change is notified, the cache may still answer as before it)."""
    began = time.monotonic()
    while True:
        try:
            check()
            answer = "accepted"
        except NotAuthenticated as exc:
            if match in str(exc):
                return time.monotonic() - began
            answer = str(exc)
        assert time.monotonic() - began < within, f"still {answer} after {within} s"
        time.sleep(0.01)


def test_a_cached_token_costs_no_query_and_every_change_is_seen(pg_url: str) -> None:
    with Clinic.open(pg_url) as clinic:
        ids = clinic.identities
        ids.add_user("tess", ["coordinator", "physician"])
        token = ids.create_token("tess", expires_days=30)["token"]
        clinic.store.cache_tokens()
        assert clinic.store.token_cache is not None and clinic.store.token_cache.listening
        checkouts: list[int] = []
        event.listen(clinic.store.engine, "checkout", lambda *_: checkouts.append(1))
        assert ids.authenticate(token, "physician").role == "physician"
        assert len(checkouts) == 1
        for _ in range(5):
            assert ids.authenticate(token, "coordinator").user == "tess"
        assert len(checkouts) == 1, "a cached token was looked up again"
        with pytest.raises(NotAuthenticated, match="not known"):
            ids.authenticate(token[:-2] + "xx")  # unknown tokens are not kept
        with pytest.raises(NotAuthenticated, match="not known"):
            ids.authenticate(token[:-2] + "xx")
        assert len(checkouts) == 3

        other = database.create(pg_url)  # another process: a shell's `pathway tokens`, or psql
        try:
            # Expiry is judged on every request from the cached time.
            with other.begin() as conn:
                conn.execute(update(tokens).values(expires_at=utcnow() + timedelta(seconds=1)))
            assert ids.authenticate(token, "coordinator").user == "tess"
            time.sleep(1.1)
            with pytest.raises(NotAuthenticated, match="expired"):
                ids.authenticate(token, "coordinator")
            with other.begin() as conn:
                conn.execute(update(tokens).values(expires_at=None))
            deadline = time.monotonic() + 3
            while True:  # the change is seen: the token works again
                try:
                    ids.authenticate(token, "coordinator")
                    break
                except NotAuthenticated:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            # A user disabled by hand, then a token revoked by hand.
            with other.begin() as conn:
                conn.execute(update(users).values(disabled_at=utcnow()))
            refused_soon(lambda: ids.authenticate(token, "coordinator"), "disabled")
            with other.begin() as conn:
                conn.execute(update(users).values(disabled_at=None))
                conn.execute(update(tokens).values(revoked_at=utcnow()))
            refused_soon(lambda: ids.authenticate(token, "coordinator"), "revoked")

            # The listener's connection dies: nothing is cached until it listens again,
            # and what changed meanwhile is not served from memory.
            fresh = ids.create_token("tess")["token"]
            assert ids.authenticate(fresh, "coordinator").user == "tess"
            (listener,) = _listeners(other)
            with other.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener})
            cache = clinic.store.token_cache
            assert cache is not None
            deadline = time.monotonic() + 5
            while not (cache.listening and _listeners(other) not in ([], [listener])):
                assert time.monotonic() < deadline, "the cache did not listen again"
                time.sleep(0.05)
            assert ids.authenticate(fresh, "coordinator").user == "tess"
            with other.begin() as conn:
                conn.execute(update(tokens).values(revoked_at=utcnow()))
            refused_soon(lambda: ids.authenticate(fresh, "coordinator"), "revoked")
        finally:
            other.dispose()
    assert clinic.store.token_cache is None  # closed with the clinic


def _listeners(engine: Engine) -> list[int]:
    """The server processes of this database's listening connections."""
    with engine.begin() as conn:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        return [int(pid) for pid in conn.execute(text(query)).scalars()]


def test_sqlite_has_no_token_cache(sqlite_url: str) -> None:
    with Clinic.open(sqlite_url) as clinic:
        clinic.store.cache_tokens()
        assert clinic.store.token_cache is None
