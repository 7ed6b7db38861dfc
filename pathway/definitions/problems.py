"""Collecting a workflow file's problems, each with its location, and the small readers the
loader's parts share (names, lists, numbers, unknown keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

#: The largest whole number a workflow file may give (days, weeks, versions): a typo beyond
#: it would overflow a database integer or mean centuries.
MAX_INT = 100_000


class Problems:
    """Every problem found so far, as `where: message` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_num(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def str_list(value: Any, where: str, p: Problems) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        p.add(where, "expected a list of names")
        return ()
    return tuple(value)


def unknown_keys(data: Mapping[str, Any], allowed: set[str], where: str, p: Problems) -> None:
    for key in data:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            p.add(f"{prefix}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def whole(value: Any, where: str, p: Problems, *, low: int = 0, high: int = MAX_INT) -> int | None:
    """`value` if it is a whole number from `low` to `high`, else None (and a problem)."""
    if not is_int(value) or not low <= value <= high:
        p.add(where, f"expected a whole number from {low} to {high}")
        return None
    return value


def number(value: Any, where: str, p: Problems, *, low: float, high: float) -> float | None:
    if not is_num(value) or not low <= value <= high:
        p.add(where, f"expected a number from {low:g} to {high:g}")
        return None
    return float(value)


def text(value: Any, where: str, p: Problems, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        p.add(where, "expected text" if not required else "required: text")
        return ""
    return value


#: The largest number a parameter or a field's bound may be (larger is a typo, and would not
#: survive a round trip through a database or JSON as the same number).
MAX_NUMBER = 1e9


def sane_numbers(value: Any, where: str, p: Problems) -> None:
    """Every number inside `value` (nested mappings and lists too) is finite and no larger
    than MAX_NUMBER either way."""
    if isinstance(value, dict):
        for key, item in value.items():
            sane_numbers(item, f"{where}.{key}", p)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            sane_numbers(item, f"{where}[{i}]", p)
    elif is_num(value) and not (abs(value) <= MAX_NUMBER):  # `not <=` is also true for NaN
        p.add(where, f"the number is out of range (at most {MAX_NUMBER:g} either way)")
