"""The database and its transactions: `Store.write()` opens a write transaction (IMMEDIATE
on SQLite) that commits on success and rolls back on any exception, `Store.read()` a
read-only one, `batch()` and `staged()` many commands in one. One command is one
transaction; `Tx` (tx.py) holds its reads and writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pathway.domain.facts import Enrollment
from pathway.errors import ConcurrencyError, StoreError
from pathway.store import database
from pathway.store.failures import DATABASE_ERRORS, translate
from pathway.store.tx import Tx

if TYPE_CHECKING:
    from pathway.store.staged import StagedTx
    from pathway.store.token_cache import TokenCache

__all__ = ["Store", "Tx", "ids"]


class Store:
    """A database holding pathway enrollments."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name
        #: Called with a transaction's outbox messages once it has committed.
        self.after_commit: list[Callable[[list[dict[str, Any]]], None]] = []
        self.settings: dict[str, str] = {}  # clinic-wide settings, read when opened
        self._zone: ZoneInfo | None = None
        self._batch: Tx | None = None  # the open batch transaction, if any
        self._staged: StagedTx | None = None  # the same when the batch is staged
        #: Token owners kept in memory (a service on PostgreSQL: `cache_tokens`).
        self.token_cache: TokenCache | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run several commands in one transaction, each in a savepoint of its own (a refused
        command rolls back alone). For bulk work such as simulation; one thread only."""
        if self._batch is not None:
            raise StoreError("batches do not nest")
        with self.write() as tx:
            self._batch = tx
            try:
                yield
            finally:
                self._batch = None

    @contextmanager
    def staged(self) -> Iterator[None]:
        """Run enroll, record and advance on patients new to the database against memory, and
        write the result in one go at the end (see staged.py). Much faster than `batch` for
        a cohort of new patients; a command that fails is undone alone. One thread only."""
        from pathway.store.staged import StagedTx

        if self._batch is not None:
            raise StoreError("batches do not nest")
        with self.write() as tx:
            staged = StagedTx(tx)
            # The commands take it for a Tx: it has the methods they use (and refuses others).
            self._batch, self._staged = cast(Tx, staged), staged
            try:
                yield
                try:
                    staged.flush()
                except (IntegrityError, sqlite3.IntegrityError):
                    # Another process enrolled one of these patients meanwhile (PostgreSQL).
                    raise ConcurrencyError(
                        "another change added some of this batch's patients while it ran; "
                        "nothing of the batch was written: retry"
                    ) from None
            finally:
                self._batch = self._staged = None

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        """Open `url`; create the schema in an empty database when `create`."""
        engine = database.create(url)
        if create:
            database.ensure_schema(engine)
        store = cls(engine)
        store.reload_settings()
        return store

    def schema_revision(self) -> str | None:
        """The schema revision stored in the database (None: an empty database)."""
        return database.current_revision(self.engine)

    def check_ready(self) -> None:
        """Raise StoreError unless the database answers and its schema is the one this code
        expects (a service's readiness)."""
        revision = database._revision(self.engine)
        if revision != database.SCHEMA_HEAD:
            raise StoreError(
                f"the database schema is at revision {revision or 'none'}, this pathway expects "
                f"{database.SCHEMA_HEAD}: run `pathway db upgrade`"
            )

    def reload_settings(self) -> None:
        """Read the clinic-wide settings (`pathway.store.settings`) again."""
        from pathway.store import settings

        try:
            with self.read() as tx:
                self.settings = settings.read(tx.conn)
        except StoreError:
            self.settings = {}  # a database not made yet: nothing is set

    @property
    def zone(self) -> tzinfo:
        """The clinic's time zone (`datetime.UTC` until `pathway db set timezone` names one)."""
        name = self.settings.get("timezone")
        if name is None:
            return UTC
        if self._zone is None or self._zone.key != name:
            self._zone = ZoneInfo(name)
        return self._zone

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on any exception.

        On SQLite it begins IMMEDIATE (the engine's default), so writers queue on the
        busy timeout instead of deadlocking when a reader would upgrade to a writer."""
        if self._batch is not None:
            batch = self._batch
            staged = self._staged
            if staged is not None:  # undone in memory
                point = staged.mark()
                try:
                    yield batch
                except BaseException:
                    staged.undo(point)
                    raise
                return
            mark = len(batch.messages)
            try:
                with batch.conn.begin_nested():
                    yield batch
            except BaseException:
                del batch.messages[mark:]
                raise
            return
        conn = self.engine.connect()
        try:
            with conn.begin():
                tx = Tx(conn)
                yield tx
        except DATABASE_ERRORS as exc:
            raise translate(exc) from None
        finally:
            conn.close()
        if tx.messages:
            for hook in self.after_commit:
                hook(tx.messages)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction: one consistent snapshot, rolled back at the end
        (inside a batch, the batch's own transaction, which sees its writes)."""
        if self._batch is not None:
            yield self._batch
            return
        conn = self.engine.connect()
        try:
            if self.backend == "sqlite":
                conn = conn.execution_options(sqlite_begin="DEFERRED")
            transaction = conn.begin()
            try:
                yield Tx(conn)
            finally:
                transaction.rollback()
        except DATABASE_ERRORS as exc:
            raise translate(exc) from None
        finally:
            conn.close()

    @property
    def in_batch(self) -> bool:
        """Whether a batch (or staged batch) transaction is open on this store."""
        return self._batch is not None

    def cache_tokens(self) -> None:
        """Keep bearer tokens' owners in memory, forgotten whenever users or tokens change
        (PostgreSQL only; see `token_cache`). For a long-running service."""
        if self.backend != "postgresql" or self.token_cache is not None:
            return
        from pathway.store.token_cache import TokenCache

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.token_cache = TokenCache(url)
        self.token_cache.start()

    def close(self) -> None:
        if self.token_cache is not None:
            self.token_cache.close()
            self.token_cache = None
        self.engine.dispose()


def ids(rows: Iterable[Enrollment]) -> list[int]:
    return [e.id for e in rows]
