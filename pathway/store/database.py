"""Opening a database: engine settings per backend, and the schema version check.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy
timeout so writers queue rather than fail, `synchronous=FULL` so a commit
survives power loss, and write transactions that begin IMMEDIATE (a writer
takes the lock before it reads, so two writers never deadlock on an upgrade).
PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, SQLAlchemyError

from pathway.errors import StoreError

#: The Alembic revision this code expects; a test checks it is the migrations' head.
SCHEMA_HEAD = "0008"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL: connections a process keeps open (a service runs this many requests at once
# without opening and closing a connection for each), and how many more a burst may open:
# up to 20 a process, so `serve --workers N` needs max_connections above 20 x N (README).
POOL_SIZE = 10
POOL_OVERFLOW = 10
MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Accept the URLs people write: a bare `postgresql://` means psycopg 3."""
    url = url.strip()
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


#: Query parameters that carry a secret (libpq accepts `?password=`).
SECRET_PARAMETERS = ("password", "sslpassword")
UNPARSEABLE = (
    "--db: not a database URL (use sqlite:///FILE or postgresql://USER@HOST/DB); "
    "it is not shown here as it may hold a password"
)


def redact(url: str) -> str:
    """The URL with any password hidden (user part and query), for messages."""
    try:
        parsed = make_url(url)
        secret = {k: "***" for k in parsed.query if k.lower() in SECRET_PARAMETERS}
        if secret:
            parsed = parsed.update_query_dict(secret)
        return parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"


def _one_line(error: BaseException | None) -> str:
    """A driver's message on one line (libpq adds an indented hint line)."""
    return " ".join(str(error).split())


def create(url: str) -> Engine:
    """An engine for `url` with the settings this project relies on."""
    url = normalize_url(url)
    try:
        if "://" not in url:
            raise ArgumentError(url)
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(UNPARSEABLE) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        try:
            return create_engine(
                url,
                pool_pre_ping=False,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                connect_args={"connect_timeout": 10},
            )
        except (ImportError, ArgumentError) as exc:
            raise StoreError(f"cannot use {redact(url)}: {type(exc).__name__}") from None
    raise StoreError(f"--db: unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)")


def missing_sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names, when that file does not exist (else None): for commands
    that must not start a new database at a mistyped path."""
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        return None  # `create` names the problem
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = parsed.database  # as SQLite opens it: relative to here, no ~ expansion
    return None if Path(path).exists() else path


def on_read_only_media(database: str | None) -> bool:
    """Whether a SQLite file lies on a file system mounted read-only (a DVD, a snapshot,
    a read-only volume): nothing can change it, so it is opened immutable."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    path = Path(database)
    try:
        return path.is_file() and bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _sqlite(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"--db: folder {str(folder)!r} does not exist")
    if on_read_only_media(database):
        # A WAL database needs its -shm file, which read-only media cannot hold; as the
        # file cannot change, SQLite may read it as immutable (no locks, no -shm).
        url = f"sqlite:///file:{quote(str(Path(str(database)).resolve()))}?immutable=1&uri=true"
    # Every unit of work ends in an explicit COMMIT or ROLLBACK, so the pool need not
    # issue another rollback when a connection is returned.
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's own transaction handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        # Calendar dates in the clinic's time zone, which SQLite cannot compute (reports).
        dbapi_connection.create_function("pathway_day", 2, local_day_number, deterministic=True)
        dbapi_connection.create_function("pathway_month", 2, local_month, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writes are the common case: IMMEDIATE unless a reader asks for DEFERRED.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        # Straight to the driver: this runs once per command, on the hot path.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")

    return engine


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(stored: str, zone: str) -> datetime:
    moment = datetime.fromisoformat(stored)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return moment.astimezone(_zone(zone))


def local_day_number(stored: str | None, zone: str) -> int | None:
    """SQLite function `pathway_day(time, zone)`: the day number of a stored UTC time's
    calendar date in `zone` (differences are days between dates)."""
    return None if stored is None else _local(stored, zone).date().toordinal()


def local_month(stored: str | None, zone: str) -> str | None:
    """SQLite function `pathway_month(time, zone)`: YYYY-MM of a stored time in `zone`."""
    return None if stored is None else _local(stored, zone).strftime("%Y-%m")


def current_revision(engine: Engine) -> str | None:
    """The schema revision stored in the database, or None for an empty database."""
    # A reader: it must not wait for, nor hold up, a writer (nor need a writable file).
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:
            conn.rollback()
            tables = set(inspect(conn).get_table_names())
            if tables & {"patients", "enrollments", "events"}:
                raise StoreError(
                    "the database has pathway-like tables but no schema version; it was not made by pathway"
                ) from None
            return None
    return row[0] if row else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the head revision (Alembic); returns (before, after)."""
    from alembic import command
    from alembic.config import Config

    before = _revision(engine)
    if _newer(before):
        raise StoreError(_newer_message(before))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, SCHEMA_HEAD


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse one that is behind or unknown."""
    revision = _revision(engine)
    if revision == SCHEMA_HEAD:
        return
    if revision is None:
        try:
            upgrade(engine)
        except SQLAlchemyError:
            # Another process may have created it at the same moment.
            if current_revision(engine) != SCHEMA_HEAD:
                raise
        return
    if _newer(revision):
        raise StoreError(_newer_message(revision))
    raise StoreError(
        f"the database schema is at revision {revision}, this pathway expects {SCHEMA_HEAD}: "
        "run `pathway db upgrade`"
    )


def _revision(engine: Engine) -> str | None:
    """current_revision, with a database that cannot be opened or read (not a database
    file, a server that does not answer) as one clear line."""
    try:
        return current_revision(engine)
    except DatabaseError as exc:  # OperationalError is one; "file is not a database" another
        if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
            from pathway.store.failures import translate

            raise translate(exc) from None  # busy: retry (exit 5)
        raise StoreError(f"cannot open {redact(str(engine.url))}: {_one_line(exc.orig)}") from None


def _newer(revision: str | None) -> bool:
    """Whether `revision` comes after the newest this code knows (made by a newer pathway)."""
    return revision is not None and revision.isdigit() and int(revision) > int(SCHEMA_HEAD)


def _newer_message(revision: str | None) -> str:
    return (
        f"the database schema is at revision {revision}, newer than this pathway knows "
        f"({SCHEMA_HEAD}): it was upgraded by a newer version of pathway; install that version"
    )
