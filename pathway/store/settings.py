"""Clinic-wide settings kept in the database (`pathway db set KEY VALUE`), read once when a
database is opened: the clinic's time zone, and the identifier system FHIR export uses
for patients who came without one."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from pathway.errors import InvalidInput
from pathway.store.tables import settings

TIMEZONE = "timezone"
PATIENT_SYSTEM = "patient-system"

#: Each setting, what it holds, and whether it may change once set.
KNOWN = {
    TIMEZONE: "the clinic's time zone, an IANA name such as Australia/Sydney (default UTC); "
    "every calendar-date rule uses it",
    PATIENT_SYSTEM: "the identifier system (a URL) FHIR export gives patients who came without one",
}
SET_ONCE = {TIMEZONE}


def read(conn: Connection) -> dict[str, str]:
    """Every setting stored (none in a database made before schema revision 0005)."""
    try:
        return {row.key: row.value for row in conn.execute(select(settings))}
    except (OperationalError, ProgrammingError):
        return {}


def check(key: str, value: str) -> str:
    """`value` for `key`, as stored; InvalidInput naming what is allowed."""
    if key not in KNOWN:
        raise InvalidInput(f"unknown setting {key!r} (settings: {', '.join(KNOWN)})")
    value = value.strip()
    if key == TIMEZONE:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                "timezone: not an IANA time zone name (e.g. Europe/London, Australia/Sydney, UTC)"
            ) from None
    if key == PATIENT_SYSTEM and not value.startswith(("http://", "https://", "urn:")):
        raise InvalidInput("patient-system: expected a URL (https://...) or a URN (urn:oid:...)")
    if not value or len(value) > 255:
        raise InvalidInput(f"{key}: expected 1 to 255 characters")
    return value
