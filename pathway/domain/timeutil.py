"""Effective times: parsing `--at` values and keeping everything in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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


def to_utc(value: When, *, name: str = "--at", default: datetime | None = None) -> datetime:
    """Turn an ISO date, date-time, `date` or `datetime` into an aware UTC datetime.

    A date means midnight UTC of that day; a date-time without an offset is taken
    as UTC. `None` gives `default` (or now).
    """
    if value is None:
        return default if default is not None else utcnow()
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed: datetime | date = (
                date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
            )
        except ValueError:
            raise InvalidTime(
                f"{name}: {value!r} is not an ISO date or date-time "
                "(use e.g. 2026-03-01 or 2026-03-01T14:30 or 2026-03-01T14:30+01:00)"
            ) from None
        value = parsed
    if isinstance(value, datetime):
        result = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        raise InvalidTime(f"{name}: expected a date or date-time, got {type(value).__name__}")
    if not EARLIEST_YEAR <= result.year <= LATEST_YEAR:
        raise InvalidTime(f"{name}: year {result.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return result


#: How far ahead of now an effective time may be. A date is midnight UTC, which in a time
#: zone ahead of UTC (up to UTC+14) can be a day that has begun there but not in UTC; a
#: date-time is an instant, allowed only a little clock skew.
DATE_TOLERANCE = timedelta(hours=14)
CLOCK_TOLERANCE = timedelta(minutes=5)


def effective(value: When, now: datetime, *, name: str = "--at") -> datetime:
    """`value` as a UTC effective time (default `now`), refused when it is in the future:
    what has not happened cannot be recorded, and an event in the future would refuse
    every change made in between."""
    when = to_utc(value, name=name, default=now)
    return not_in_future(when, now, name=name, date_only=_is_date(value))


def _is_date(value: When) -> bool:
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


def not_in_future(when: datetime, now: datetime, *, name: str = "--at", date_only: bool = False) -> datetime:
    """`when`, unless it is later than now allows (see DATE_TOLERANCE)."""
    if when > now + (DATE_TOLERANCE if date_only else CLOCK_TOLERANCE):
        raise InvalidTime(
            f"{name}: {when.isoformat().replace('+00:00', 'Z')} is in the future; record what has "
            "happened, when it has happened"
        )
    return when


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


def days_between(earlier: datetime | date, later: datetime | date) -> int:
    """Whole calendar days from `earlier` to `later` (dates compared, times ignored)."""
    a = earlier.date() if isinstance(earlier, datetime) else earlier
    b = later.date() if isinstance(later, datetime) else later
    return (b - a).days


__all__ = [
    "When",
    "days_between",
    "from_storage",
    "in_last_12_months",
    "iso",
    "minus_years",
    "plus_months",
    "to_utc",
    "utcnow",
]
