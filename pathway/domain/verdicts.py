"""Verdicts: what a guard says about a patient record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Failure:
    """One unmet criterion: its name and a message naming the value seen and the threshold or fix."""

    criterion: str
    message: str
    #: For a criterion that time alone will meet (a limit per 12 months): the first
    #: calendar date on which it is met. The worklist names it.
    not_before: date | None = None
    #: The criterion waits for the record of a planned step not yet taken (the procedure
    #: itself, a block still to come): waiting as planned, which the worklist leaves out
    #: until the stay runs past its SLA.
    awaiting: bool = False


@dataclass(frozen=True)
class Verdict:
    """The outcome of one guard: passed, plus every failed criterion."""

    guard: str
    failures: tuple[Failure, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "guard": self.guard,
            "passed": self.passed,
            "failures": [{"criterion": f.criterion, "message": f.message} for f in self.failures],
        }


class Criteria:
    """Collects failed criteria while a guard checks them, then gives the verdict.

    >>> c = Criteria("eligibility")
    >>> c.require(False, "baseline", "no baseline is recorded")
    False
    >>> c.verdict().passed
    False
    """

    def __init__(self, guard: str) -> None:
        self.guard = guard
        self._failures: list[Failure] = []

    def fail(
        self, criterion: str, message: str, *, not_before: date | None = None, awaiting: bool = False
    ) -> None:
        self._failures.append(Failure(criterion, message, not_before, awaiting))

    def require(self, ok: bool, criterion: str, message: str) -> bool:
        """Record `message` as a failure unless `ok`; return `ok`."""
        if not ok:
            self.fail(criterion, message)
        return ok

    def verdict(self) -> Verdict:
        return Verdict(self.guard, tuple(self._failures))


def failures(verdicts: tuple[Verdict, ...] | list[Verdict]) -> list[tuple[str, Failure]]:
    """(guard, failure) of every failed criterion, each fact once: when two guards of a
    transition find the same thing (the same message), the first one says it
    (CLINICAL.md clarification 12)."""
    seen: set[str] = set()
    found = []
    for v in verdicts:
        for f in v.failures:
            if f.message not in seen:
                seen.add(f.message)
                found.append((v.guard, f))
    return found


def refusal(verdicts: tuple[Verdict, ...] | list[Verdict]) -> str:
    """Every failed criterion's message, once each, as one line."""
    return "; ".join(f.message for _, f in failures(verdicts))


def reasons(verdicts: tuple[Verdict, ...] | list[Verdict]) -> list[dict[str, str]]:
    """Flatten verdicts into the `reasons` list of the JSON contract: one entry per failure."""
    return [
        {"guard": g, "criterion": f.criterion, "message": f.message}
        | ({"not_before": f.not_before.isoformat()} if f.not_before else {})
        for g, f in failures(verdicts)
    ]
