"""What a workflow file declares for the engine's reports, worklist, FHIR and simulation.

The engine knows no pathway: which trigger is the treatment, which states stop the
referral-to-treatment clock, which observation measures the outcome, when follow-ups
are due, which codes a FHIR receiver gets. Each workflow file says so in its own
sections (`rtt`, `outcome`, `follow_up`, `worklist`, `fhir`, `simulation`), loaded
into these frozen dataclasses by `pathway.definitions.sections`; a section a file
leaves out means the engine does not report that for the pathway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathway.domain.facts import Event


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class RttClock:
    """Referral to treatment: the clock starts on entering `start` and stops at the first
    event after it that fires a `stop_triggers` trigger (the definitive treatment) or enters
    a `stop_states` state (a decision not to treat). Holds do not pause it."""

    start: str
    stop_triggers: tuple[str, ...]
    stop_states: tuple[str, ...]
    standard_weeks: int = 18
    target_pct: float = 92.0
    at_risk_weeks: int = 16

    @property
    def standard_days(self) -> int:
        return self.standard_weeks * 7

    def starts(self, event: Event) -> bool:
        return event.to_state == self.start

    def stops(self, event: Event) -> bool:
        return event.trigger in self.stop_triggers or event.to_state in self.stop_states

    def span(self, events: Iterable[Event]) -> tuple[Event | None, Event | None]:
        """(the event that started the clock, the first one after it that stopped it), in
        the order of the log; None where there is none."""
        ordered = sorted(events, key=lambda e: e.seq)
        start = next((e for e in ordered if self.starts(e)), None)
        if start is None:
            return None, None
        return start, next((e for e in ordered if e.seq > start.seq and self.stops(e)), None)


@dataclass(frozen=True)
class Score:
    """One numeric field of one observation kind."""

    kind: str
    field: str


@dataclass(frozen=True)
class SecondaryMeasure:
    """A second score reported beside the outcome (e.g. a disability index): its mean change
    and the share whose score fell by at least `meaningful_change`."""

    field: str
    baseline_field: str
    label: str
    meaningful_change: float


@dataclass(frozen=True)
class OutcomeMeasure:
    """How a treatment's outcome is judged: `measure` relative to the latest `baseline` on or
    before the first `treatment`, a success when the relief is at least `success_relief_pct`,
    judged on the measurement in `window_days` (calendar days after the treatment) closest
    to `target_day`."""

    treatment: str
    measure: Score
    baseline: Score
    success_relief_pct: float
    window_days: tuple[int, int]
    target_day: int
    label: str
    secondary: SecondaryMeasure | None = None
    repeat: str | None = None  # the trigger of a repeat treatment, counted by the report


@dataclass(frozen=True)
class FollowUpSchedule:
    """Follow-ups due `months` after the latest `after` trigger, each fulfilled by an
    observation of `kind` between `due_days_before` and `due_days_after` of its target day;
    only while the enrollment is in one of `in_states`."""

    after: str
    kind: str
    months: tuple[int, ...]
    in_states: tuple[str, ...]
    due_days_before: int = 14
    due_days_after: int = 30


@dataclass(frozen=True)
class WorklistPolicy:
    """What the worklist treats as routine: in a `routine` state, a step that is blocked is
    waiting as planned, not an item (an overdue stay or a due follow-up still is)."""

    routine: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coding:
    """A code in a code system (a full URL, or the engine's own system for `pathway`)."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class ProcedureCodes:
    """How one observation kind is exported as a FHIR Procedure."""

    text: str
    code: Coding | None = None
    #: The code of each level after the first in one session (an add-on code).
    add_on: Coding | None = None
    #: The field that holds the side (left, right, bilateral), if any.
    laterality: str | None = None
    #: The text of each body site: `{level}` (a value of the kind's levels field) and `{side}`.
    body_site: str = "{side} {level}"
    #: The trigger whose success on the observation's day makes it a procedure done; without
    #: one (a refused attempt's record) it is exported `not-done`. None: every record is done.
    performed_by: str | None = None


@dataclass(frozen=True)
class FhirMapping:
    """What FHIR export sends: the scores of each kind as Observations (with their codes)
    and the kinds that are procedures."""

    scores: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    codes: Mapping[str, Coding] = field(default_factory=_empty)
    procedures: Mapping[str, ProcedureCodes] = field(default_factory=_empty)


@dataclass(frozen=True)
class Simulation:
    """The journey `pathway simulate` draws patients from (a `pathway.journeys` entry)."""

    journey: str


@dataclass(frozen=True)
class Reopen:
    """A closed episode may be reopened: a terminal transition entered in error is voided
    by a `trigger` event (reason required) within `within_days` of it, by these `roles`."""

    trigger: str
    roles: tuple[str, ...]
    within_days: int


@dataclass(frozen=True)
class Declarations:
    """Every section of a workflow file beyond its states, transitions and kinds."""

    rtt: RttClock | None = None
    outcome: OutcomeMeasure | None = None
    follow_up: FollowUpSchedule | None = None
    worklist: WorklistPolicy = field(default_factory=WorklistPolicy)
    fhir: FhirMapping = field(default_factory=FhirMapping)
    simulation: Simulation | None = None
    reopen: Reopen | None = None
