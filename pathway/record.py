"""The patient record that guards read: enrollments, observations and events.

Plain frozen dataclasses, no database: the store builds them, guards read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Enrollment:
    """One patient's journey through one pathway (an episode)."""

    id: int
    patient: str
    pathway: str
    pathway_version: int
    profile: str
    state: str
    held_from: str | None
    entered_state_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    version: int
    last_event_at: datetime
    last_seq: int
    display_name: str | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Observation:
    """A clinical fact recorded against an enrollment (append-only)."""

    id: int
    enrollment_id: int
    kind: str
    data: Mapping[str, Any]
    effective_at: datetime
    recorded_at: datetime
    actor: str
    role: str
    entered_in_error: bool = False
    error_reason: str | None = None
    error_actor: str | None = None
    error_at: datetime | None = None

    @property
    def day(self) -> date:
        """The calendar date (UTC) the observation took effect: the unit rules compare."""
        return self.effective_at.date()

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


@dataclass(frozen=True)
class Event:
    """A state change of an enrollment (append-only); `seq` counts from 1 per enrollment."""

    enrollment_id: int
    seq: int
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    effective_at: datetime
    recorded_at: datetime
    reason: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def day(self) -> date:
        return self.effective_at.date()


def _chronological(obs: Observation) -> tuple[datetime, int]:
    return (obs.effective_at, obs.id)


@dataclass(frozen=True)
class PatientRecord:
    """What a guard may read, as of `now` (the trigger's effective time).

    `observations` and `events` belong to this enrollment; `region_observations`
    and `region_events` cover every enrollment of the patient in pathways of the
    same region (this one included), for limits that a new episode must not reset.
    Observations entered in error, and observations dated after `now`'s calendar
    date, are left out. Observations are in chronological order.
    """

    enrollment: Enrollment
    now: datetime
    observations: tuple[Observation, ...]
    events: tuple[Event, ...]
    region_observations: tuple[Observation, ...]
    region_events: tuple[Event, ...]
    reason: str | None = None

    @classmethod
    def build(
        cls,
        enrollment: Enrollment,
        now: datetime,
        observations: tuple[Observation, ...] | list[Observation],
        events: tuple[Event, ...] | list[Event],
        region_observations: tuple[Observation, ...] | list[Observation] = (),
        region_events: tuple[Event, ...] | list[Event] = (),
        reason: str | None = None,
    ) -> PatientRecord:
        """Filter and order the raw rows into the record as of `now`."""
        today = now.date()

        def visible(rows: tuple[Observation, ...] | list[Observation]) -> tuple[Observation, ...]:
            kept = [o for o in rows if not o.entered_in_error and o.day <= today]
            return tuple(sorted(kept, key=_chronological))

        own = visible(observations)
        region = visible(region_observations) if region_observations else own
        own_events = tuple(sorted(events, key=lambda e: e.seq))
        return cls(
            enrollment=enrollment,
            now=now,
            observations=own,
            events=own_events,
            region_observations=region,
            region_events=tuple(region_events) if region_events else own_events,
            reason=reason,
        )

    @property
    def today(self) -> date:
        return self.now.date()

    def of_kind(self, kind: str) -> tuple[Observation, ...]:
        """This enrollment's observations of `kind`, oldest first."""
        return tuple(o for o in self.observations if o.kind == kind)

    def latest(self, kind: str) -> Observation | None:
        """The most recent observation of `kind` ("the" value of CLINICAL.md), or None."""
        found = self.of_kind(kind)
        return found[-1] if found else None

    def region_of_kind(self, kind: str) -> tuple[Observation, ...]:
        return tuple(o for o in self.region_observations if o.kind == kind)

    def events_with_trigger(self, trigger: str, *, region: bool = False) -> tuple[Event, ...]:
        pool = self.region_events if region else self.events
        return tuple(e for e in pool if e.trigger == trigger)
