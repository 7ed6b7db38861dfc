"""The patient record that guards read: this enrollment's observations and events, and
those of the patient's other enrollments in the same region, as of a time.

`Enrollment`, `Observation` and `Event` live in `pathway.domain.facts` and are
importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cached_property

from pathway.domain.asof import events_until, for_guards, localized
from pathway.domain.facts import Enrollment, Event, Observation


def _order(obs: Observation) -> tuple[datetime, int]:
    return (obs.effective_at, obs.id)


__all__ = ["Enrollment", "Event", "EventRows", "Observation", "ObservationRows", "PatientRecord"]


ObservationRows = tuple[Observation, ...] | list[Observation]
EventRows = tuple[Event, ...] | list[Event]


@dataclass(frozen=True, eq=False)
class PatientRecord:
    """What a guard may read, as of `now` (the trigger's effective time).

    `observations` and `events` belong to this enrollment; `region_observations`
    and `region_events` cover every enrollment of the patient in pathways of the
    same region (this one included), for limits that a new episode must not reset.
    Observations entered in error or dated after `now`'s calendar date, and events
    after `now`, are left out (`pathway.domain.asof`). Observations are in
    chronological order.

    The rows are loaded on first use (a trigger without guards reads nothing),
    through loaders that return (own rows, region rows).

    Calendar dates are the clinic's (`zone`, CLINICAL.md clarification 1): the record
    gives `now` and every row's effective time in that zone, so `today`, `Observation.day`
    and `Event.day` are the clinic's dates.
    """

    enrollment: Enrollment
    now: datetime
    load_observations: Callable[[], tuple[ObservationRows, ObservationRows]]
    load_events: Callable[[], tuple[EventRows, EventRows]]
    reason: str | None = None
    zone: tzinfo = UTC
    #: The observation being recorded, when a kind's guards judge it (it is in the rows too).
    recording: Observation | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", self.now.astimezone(self.zone))

    @classmethod
    def build(
        cls,
        enrollment: Enrollment,
        now: datetime,
        observations: ObservationRows,
        events: EventRows,
        region_observations: ObservationRows = (),
        region_events: EventRows = (),
        reason: str | None = None,
        zone: tzinfo = UTC,
    ) -> PatientRecord:
        """A record from rows already at hand (region rows default to this enrollment's)."""
        return cls(
            enrollment=enrollment,
            now=now,
            load_observations=lambda: (observations, region_observations or observations),
            load_events=lambda: (events, region_events or events),
            reason=reason,
            zone=zone,
        )

    def _visible(self, rows: ObservationRows) -> tuple[Observation, ...]:
        return for_guards(localized(rows, self.zone), self.now)

    @cached_property
    def _observation_rows(self) -> tuple[tuple[Observation, ...], tuple[Observation, ...]]:
        own, region = self.load_observations()
        return self._visible(own), self._visible(region)

    @cached_property
    def _event_rows(self) -> tuple[tuple[Event, ...], tuple[Event, ...]]:
        own, region = self.load_events()
        # Nothing that happened after now: a state change is an instant (an observation is
        # of a calendar day), so a check as of 10:00 does not see a 15:00 event that day.
        mine = sorted(events_until(localized(own, self.zone), self.now), key=lambda e: e.seq)
        return tuple(mine), tuple(events_until(localized(region, self.zone), self.now))

    @property
    def observations(self) -> tuple[Observation, ...]:
        return self._observation_rows[0]

    @property
    def region_observations(self) -> tuple[Observation, ...]:
        return self._observation_rows[1]

    @cached_property
    def region_observations_any_day(self) -> tuple[Observation, ...]:
        """The region's observations of every day, later ones too (for a limit a back-dated
        observation must not break in a window ending later); those in error left out."""
        _, region = self.load_observations()
        return tuple(sorted((o for o in localized(region, self.zone) if not o.entered_in_error), key=_order))

    @property
    def events(self) -> tuple[Event, ...]:
        return self._event_rows[0]

    @property
    def region_events(self) -> tuple[Event, ...]:
        return self._event_rows[1]

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
