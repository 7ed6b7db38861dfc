"""A least-privilege PostgreSQL role for the service and other clients (`pathway db create-role`).

The role may read every table and add rows, and change only what the engine changes
(enrollments, patients' names, an observation's entered-in-error mark, the outbox's
delivery state, settings, the service's users, tokens, idempotency keys and sessions, subscribers and their
deliveries;
the access log only grows): it has no DELETE or TRUNCATE, owns nothing (so it cannot
disable a trigger or drop one) and is not a superuser (so it cannot set
`session_replication_role` to skip them). Services connect as it; `db upgrade` and
`db create-role` run as the owner.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from pathway.errors import InvalidInput, StoreError

ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Tables the role may UPDATE (triggers keep the updates to what the engine makes).
UPDATABLE = (
    "patients",
    "enrollments",
    "observations",
    "outbox",
    "settings",
    "users",
    "tokens",
    "idempotency_keys",
    "sessions",
    "subscribers",
    "deliveries",
)


def create_role(conn: Connection, name: str, password: str | None) -> bool:
    """Create (or, if it exists, grant again) the role `name`; True when it was created."""
    if not ROLE.fullmatch(name):
        raise InvalidInput("role: lower-case letters, digits and _ (at most 63), starting with a letter")
    if conn.dialect.name != "postgresql":
        raise StoreError("db create-role is for PostgreSQL: a SQLite file has no roles (protect the file)")
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first() is not None
    if not exists:
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT'))
    if password is not None:
        # The password is a literal in ALTER ROLE: quoted by the server's own quote_literal.
        literal = conn.execute(text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
        conn.execute(text(f'ALTER ROLE "{name}" PASSWORD {literal}'))
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    for statement in (
        f'GRANT CONNECT ON DATABASE "{database}" TO "{name}"',
        f'GRANT USAGE ON SCHEMA public TO "{name}"',
        f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{name}"',
        f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO "{name}"',
        f'GRANT UPDATE ON {", ".join(UPDATABLE)} TO "{name}"',
        f'REVOKE INSERT ON alembic_version FROM "{name}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{name}"',
    ):
        conn.execute(text(statement))
    return not exists
