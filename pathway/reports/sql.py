"""SQL pieces the reports share, written once for SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from pathway.store.fastpath import sqlite_time

_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


def live(alias: str = "e") -> str:
    """SQL true for an event of `alias` that counts: not a reopen, and not a close a reopen
    voided (reports read the log as if the voided close had never happened). The probe
    uses the partial index ix_events_voids, which holds only the reopens."""
    return (
        f"{alias}.voids IS NULL AND NOT EXISTS (SELECT 1 FROM events v_ "
        f"WHERE v_.enrollment_id = {alias}.enrollment_id AND v_.voids = {alias}.seq)"
    )


def days(dialect: str, start: str, end: str) -> str:
    """SQL for the fractional days from `start` to `end`."""
    if dialect == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"
    return f"(julianday({end}) - julianday({start}))"


def zone_name(zone: tzinfo) -> str:
    """The IANA name of the clinic's time zone, checked to be safe inside SQL text."""
    name = getattr(zone, "key", None) or "UTC"
    if not _ZONE.fullmatch(name):
        raise ValueError(f"not a time zone name: {name!r}")
    return name


def calendar_days(dialect: str, start: str, end: str, zone: tzinfo = UTC) -> str:
    """SQL for the whole calendar days (dates in the clinic's time zone) from `start` to
    `end`: the count that `status`, `list` and the worklist use, so "over SLA" means the
    same everywhere. SQLite has no time zones: a function the store registers on every
    connection (`pathway_day`) gives the date there."""
    name = zone_name(zone)
    if dialect == "postgresql":
        return f"(({end} AT TIME ZONE '{name}')::date - ({start} AT TIME ZONE '{name}')::date)"
    if name == "UTC":
        return f"CAST(julianday(date({end})) - julianday(date({start})) AS INTEGER)"
    return f"(pathway_day({end}, '{name}') - pathway_day({start}, '{name}'))"


def whole(dialect: str, span_days: str, unit_days: int) -> str:
    """SQL for how many whole `unit_days` fit in `span_days` (never negative), counted to the
    millisecond: fractional days are inexact in floating point, so a stay of exactly 7 days
    could come out as 6.9999999999 and fall into the week before."""
    unit = unit_days * 86_400_000
    if dialect == "postgresql":  # CAST would round, not floor
        return f"CAST(FLOOR(ROUND(CAST({span_days} AS NUMERIC) * 86400000) / {unit}) AS INTEGER)"
    return f"(CAST(ROUND({span_days} * 86400000) AS INTEGER) / {unit})"  # integer division


def json_number(dialect: str, column: str, field: str) -> str:
    """SQL for a numeric field of a JSON column (`field` is a workflow file's field name,
    checked by the loader to be lower_snake_case, so it is safe inside the SQL)."""
    if dialect == "postgresql":
        return f"(({column})->>'{field}')::numeric"
    return f"CAST(json_extract({column}, '$.{field}') AS REAL)"


def month(dialect: str, column: str, zone: tzinfo = UTC) -> str:
    """SQL for the YYYY-MM (in the clinic's time zone) of a time column."""
    name = zone_name(zone)
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE '{name}', 'YYYY-MM')"
    if name == "UTC":
        return f"substr({column}, 1, 7)"
    return f"pathway_month({column}, '{name}')"


def bind_time(dialect: str, value: datetime | None) -> Any:
    """A time as the database compares it (SQLite stores UTC text)."""
    return sqlite_time(value) if dialect == "sqlite" and value is not None else value


def in_list(prefix: str, values: list[str] | tuple[str, ...], params: dict[str, Any]) -> str:
    """`(:prefix_0, :prefix_1, ...)` with the values bound in `params`; `(NULL)` when empty
    (so `x IN (NULL)` matches nothing)."""
    if not values:
        return "(NULL)"
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}_{i}"] = value
        names.append(f":{prefix}_{i}")
    return "(" + ", ".join(names) + ")"
