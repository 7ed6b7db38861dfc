"""Effective times: parsing `--at` values, keeping everything in UTC, and calendar dates in
the clinic's time zone (CLINICAL.md clarification 1)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

from pathway.errors import InvalidTime

#: Times outside these years are refused: a typo, not a clinical fact.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200

When = datetime | date | str | None


def iso(value: datetime | date | None) -> str | None:
    """ISO 8601 text; UTC times end in `Z`."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def utcnow() -> datetime:
    return datetime.now(UTC)


#: The forms `--at` and the other times take: a date, or a date and time of day (seconds and
#: a fraction optional) with an optional offset or Z. Python would also read others
#: (20260301, 2026-W09-7, 2026-060): a typo is more likely than a week date.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")


def parse_date(text: str) -> date | None:
    """`text` (YYYY-MM-DD) as a date, or None when it is not one."""
    text = text.strip()
    if not text.isascii() or not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def to_utc(
    value: When, *, name: str = "--at", default: datetime | None = None, zone: tzinfo = UTC
) -> datetime:
    """Turn an ISO date, date-time, `date` or `datetime` into an aware UTC datetime.

    A date means midnight of that day in the clinic's time zone `zone`, and so does a
    date-time without an offset. `None` gives `default` (or now).
    """
    if value is None:
        return default if default is not None else utcnow()
    if isinstance(value, str):
        text = value.strip()
        parsed: datetime | date | None = None
        if text.isascii() and _DATE.fullmatch(text):
            parsed = parse_date(text)
        elif text.isascii() and _DATE_TIME.fullmatch(text):
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
        if parsed is None:
            raise InvalidTime(
                f"{name}: not an ISO date or date-time "
                "(use e.g. 2026-03-01 or 2026-03-01T14:30 or 2026-03-01T14:30+01:00)"
            )
        value = parsed
    if isinstance(value, datetime):
        result = value.replace(tzinfo=zone) if value.tzinfo is None else value
        result = result.astimezone(UTC)
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)
    else:
        raise InvalidTime(f"{name}: expected a date or date-time, got {type(value).__name__}")
    if not EARLIEST_YEAR <= result.year <= LATEST_YEAR:
        raise InvalidTime(f"{name}: year {result.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return result


#: How far ahead of now an effective time may be. A date-time is an instant, allowed only a
#: little clock skew. A date is today or earlier in the clinic's time zone; with no zone set
#: (UTC), a date up to 14 hours ahead is accepted, as it is today somewhere (UTC+14).
DATE_TOLERANCE = timedelta(hours=14)
CLOCK_TOLERANCE = timedelta(minutes=5)


def effective(value: When, now: datetime, *, name: str = "--at", zone: tzinfo = UTC) -> datetime:
    """`value` as a UTC effective time (default `now`), refused when it is in the future:
    what has not happened cannot be recorded, and an event in the future would refuse
    every change made in between."""
    when = to_utc(value, name=name, default=now, zone=zone)
    return not_in_future(when, now, name=name, date_only=_is_date(value), zone=zone)


def _is_date(value: When) -> bool:
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


def not_in_future(
    when: datetime, now: datetime, *, name: str = "--at", date_only: bool = False, zone: tzinfo = UTC
) -> datetime:
    """`when`, unless it is later than now allows (see DATE_TOLERANCE)."""
    if date_only and zone is not UTC:
        late = when.astimezone(zone).date() > now.astimezone(zone).date()
    else:
        late = when > now + (DATE_TOLERANCE if date_only else CLOCK_TOLERANCE)
    if late:
        raise InvalidTime(
            f"{name}: {when.isoformat().replace('+00:00', 'Z')} is in the future; record what has "
            "happened, when it has happened"
        )
    return when


def local_day(value: datetime, zone: tzinfo = UTC) -> date:
    """The calendar date of `value` in the clinic's time zone."""
    return value.astimezone(zone).date()


def from_storage(value: datetime) -> datetime:
    """Times come back from SQLite naive; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def minus_years(day: date, years: int) -> date:
    """The same calendar date `years` earlier; 29 February maps to 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def plus_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def in_last_12_months(candidate: date, up_to: date) -> bool:
    """Whether `candidate` falls in the closed window from one year before `up_to` to `up_to`."""
    return minus_years(up_to, 1) <= candidate <= up_to


def days_between(earlier: datetime | date, later: datetime | date, zone: tzinfo = UTC) -> int:
    """Whole calendar days from `earlier` to `later` (dates compared in the clinic's time
    zone, times of day ignored)."""
    a = local_day(earlier, zone) if isinstance(earlier, datetime) else earlier
    b = local_day(later, zone) if isinstance(later, datetime) else later
    return (b - a).days


__all__ = [
    "When",
    "days_between",
    "from_storage",
    "in_last_12_months",
    "iso",
    "local_day",
    "minus_years",
    "parse_date",
    "plus_months",
    "to_utc",
    "utcnow",
]
