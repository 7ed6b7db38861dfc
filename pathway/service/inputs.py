"""Checking what callers give the service: patient identifiers, names, free text, windows."""

from __future__ import annotations

import getpass
import re
from datetime import UTC, datetime, tzinfo

from pathway.domain import fields
from pathway.domain.timeutil import When, iso, to_utc
from pathway.errors import InvalidInput

PATIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
MAX_NAME = 200
MAX_REASON = 2000


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def check_patient_id(patient: str) -> str:
    # The whole text must match (`$` would let a trailing newline through); the text itself
    # is not repeated: a mistyped identifier may be a name or another patient's number.
    if not isinstance(patient, str) or not PATIENT_ID.fullmatch(patient):
        raise InvalidInput(
            "patient: not a valid identifier "
            "(1-64 letters, digits and . _ : / -, starting with a letter or digit)"
        )
    return patient


def check_text(value: str | None, name: str, limit: int, *, one_line: bool = False) -> str | None:
    """`value` stripped (None when empty); free text (a reason) may span lines, a name
    (`one_line`) may not: it is shown in tables and logs one per line."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected text")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{name}: longer than {limit} characters")
    if fields.CONTROL.search(value):
        raise InvalidInput(f"{name}: contains control characters")
    if one_line and fields.LINE_BREAKS.search(value):
        raise InvalidInput(f"{name}: must be on one line (no tabs or line breaks)")
    return value or None


def window(since: When, until: When, zone: tzinfo = UTC) -> dict[str, datetime | None]:
    """--since and --until as UTC times; a window that ends before it begins is refused
    (it would report nothing, which looks like an empty clinic)."""
    start = to_utc(since, name="--since", zone=zone) if since else None
    end = to_utc(until, name="--until", zone=zone) if until else None
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"--since {iso(start)} is after --until {iso(end)}: nothing could be in between")
    return {"since": start, "until": end}
