"""Validating observation values against their kind, and converting them for storage.

Values may come typed (from Python) or as text (from the CLI: `levels=C4-5,C5-6`,
`red_flags=`, `anticoagulant=no`). Every problem is reported at once, naming the
field and what is allowed; nothing is stored unless all fields are valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pathway.domain.definition import FieldSpec, KindSpec
from pathway.domain.timeutil import EARLIEST_YEAR, LATEST_YEAR, parse_date
from pathway.errors import InvalidInput

MAX_TEXT = 2000
#: Control characters other than tab and line breaks, C0 and C1 (refused in any text; NUL
#: would also be refused by PostgreSQL, with an error that is no use to a person).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: What a name on one line (an actor, a display name) may not hold.
LINE_BREAKS = re.compile(r"[\t\n\r\x85\u2028\u2029]")
# ASCII digits only: Python's int() and float() also read other scripts' digits ("１").
_INT = re.compile(r"^[+-]?[0-9]{1,9}$")
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$")
_RANGE = re.compile(r"^\s*\d+(\.\d+)?\s*[-–/]\s*\d+(\.\d+)?\s*$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


class _Bad(Exception):
    pass


def _canonical(value: str, allowed: tuple[str, ...]) -> str:
    if value in allowed:
        return value
    folded = {a.lower(): a for a in allowed}
    found = folded.get(value.strip().lower())
    if found is None:
        raise _Bad
    return found


def _parse(spec: FieldSpec, value: Any) -> Any:
    """The stored (JSON) form of one value; raises _Bad with no message when invalid."""
    t = spec.type
    if t == "int":
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, str):
            if not _INT.match(value.strip()):
                raise _Bad
            value = int(value.strip())
        if not isinstance(value, int):
            raise _Bad
        _check_range(spec, value)
        return value
    if t == "number":
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, str):
            if not _NUMBER.match(value.strip()):
                raise _Bad
            value = float(value.strip())
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise _Bad
        _check_range(spec, value)
        return value
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad
    if t == "date":
        if isinstance(value, datetime):
            value = value.date()
        elif isinstance(value, str):
            parsed = parse_date(value)  # YYYY-MM-DD only, as the help says
            if parsed is None:
                raise _Bad
            value = parsed
        if not isinstance(value, date) or not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise _Bad
        return value.isoformat()
    if t == "text":
        if not isinstance(value, str) or len(value) > MAX_TEXT or CONTROL.search(value):
            raise _Bad
        return value.strip()
    if t == "enum":
        if not isinstance(value, str):
            raise _Bad
        return _canonical(value, spec.values)
    # list and levels
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")] if value.strip() else []
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise _Bad
    if not all(isinstance(v, str) for v in items):
        raise _Bad
    result = list(dict.fromkeys(_canonical(v, spec.values) for v in items))
    if t == "levels" and not result:
        raise _Bad
    return result


def _check_range(spec: FieldSpec, value: float) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise _Bad
    if spec.maximum is not None and value > spec.maximum:
        raise _Bad


def _problem(spec: FieldSpec, value: Any) -> str:
    # Never the value itself: error messages and logs must not carry observation values.
    message = f"{spec.name}: the value given is not allowed; expected {spec.describe()}"
    if spec.type in ("int", "number") and isinstance(value, str) and _RANGE.match(value):
        message += " (record one value, not a range)"
    if spec.type == "text" and isinstance(value, str) and len(value) > MAX_TEXT:
        message = f"{spec.name}: text is longer than {MAX_TEXT} characters"
    elif spec.type == "text" and isinstance(value, str) and CONTROL.search(value):
        message = f"{spec.name}: text may not hold control characters"
    return message


def validate(kind: KindSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check `values` against `kind`; return the storable form or raise InvalidInput with all problems."""
    problems: list[str] = []
    result: dict[str, Any] = {}
    for name in values:
        if name not in kind.fields:
            problems.append(f"{name}: not a field of {kind.name} (fields: {', '.join(kind.fields)})")
    for name, spec in kind.fields.items():
        if name not in values or values[name] is None:
            if spec.required:
                problems.append(f"{name}: required ({spec.describe()})")
            continue
        try:
            result[name] = _parse(spec, values[name])
        except _Bad:
            problems.append(_problem(spec, values[name]))
    if problems:
        raise InvalidInput(f"invalid {kind.name}: " + "; ".join(problems), problems)
    return result


def refuse_later_dates(kind: KindSpec, stored: Mapping[str, Any], day: date) -> None:
    """A date field may not be later than the day the observation records (`day`), unless
    the field says it may (`future: true` in the workflow file, e.g. a planned date)."""
    problems = [
        f"{name}: a date after the day this observation records ({day.isoformat()}); "
        "a date field holds what has happened"
        for name, spec in kind.fields.items()
        if spec.type == "date"
        and not spec.future
        and name in stored
        and date.fromisoformat(stored[name]) > day
    ]
    if problems:
        raise InvalidInput(f"invalid {kind.name}: " + "; ".join(problems), problems)


def decode(kind: KindSpec | None, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The typed form of stored values (ISO dates back to `date`)."""
    result = dict(stored)
    for name in date_fields(kind):
        if isinstance(result.get(name), str):
            result[name] = date.fromisoformat(result[name])
    return result


def date_fields(kind: KindSpec | None) -> tuple[str, ...]:
    """The kind's date fields: the only ones stored differently from their typed form."""
    if kind is None:
        return ()
    return tuple(name for name, spec in kind.fields.items() if spec.type == "date")


def parse_assignments(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`FIELD=VALUE` words from the command line into a mapping (values stay text)."""
    result: dict[str, str] = {}
    problems: list[str] = []
    for number, pair in enumerate(pairs, start=1):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            # The word is not echoed: it may be a value (score:7), and values stay out of messages.
            problems.append(
                f"word {number} after the kind: expected FIELD=VALUE (a list: FIELD=A,B; "
                "`pathway workflows show ID` lists the fields)"
            )
        elif name in result:
            problems.append(f"{name}: given twice")
        else:
            result[name] = value
    if problems:
        raise InvalidInput("; ".join(problems), problems)
    return result
