"""Answering "as of a time": the one module that says which events, observations and
corrections had happened by then, and where an enrollment stood.

Every reader that looks back (status, check, history and list with `--at`, the
worklist with `--as-of`, the guards' record, exports) takes its rows through here:

- an event counts from its effective time (an instant);
- an observation counts from its effective time for people (history), and from its
  calendar day for guards (a clinical fact is of a day: CLINICAL.md);
- a correction shows in the history from the time it took effect (as of an earlier
  time the observation stood uncorrected), but what is judged (guards, reports) never
  counts an observation known to be in error, whatever the time judged: `check --at`
  then says what `advance --at` would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

from pathway.domain.effects import MIGRATE, after_event, moved, opened

if TYPE_CHECKING:
    from pathway.domain.definition import Workflow
    from pathway.domain.facts import Enrollment, Event, Observation


def versions_after(events: Sequence[Any], now: int) -> list[int]:
    """The workflow version an enrollment was on after each of `events` (all of its events,
    seq order), walking back from its version `now` through its migrations."""
    versions, version = [], now
    for e in reversed(events):
        versions.append(version)
        if e.trigger == MIGRATE and isinstance(e.payload, Mapping) and "from_version" in e.payload:
            version = int(e.payload["from_version"])
    return versions[::-1]


Row = TypeVar("Row", "Observation", "Event")


def localized(rows: Iterable[Row], zone: tzinfo) -> list[Row]:
    """`rows` with their effective times given in the clinic's time zone (the same instants),
    so a row's `day` is the clinic's calendar date."""
    if zone is UTC:
        return list(rows)
    return [replace(row, effective_at=row.effective_at.astimezone(zone)) for row in rows]


def events_until(events: Iterable[Event], when: datetime) -> list[Event]:
    """The events that had taken effect by `when`."""
    return [e for e in events if e.effective_at <= when]


def corrected_by(observation: Observation, when: datetime) -> bool:
    """Whether `observation` had been marked entered-in-error by `when`."""
    if not observation.entered_in_error:
        return False
    return observation.error_at is None or observation.error_at <= when


def as_it_stood(observation: Observation, when: datetime) -> Observation:
    """`observation` as it stood at `when`: a correction that took effect later is undone."""
    if not observation.entered_in_error or corrected_by(observation, when):
        return observation
    return replace(
        observation,
        entered_in_error=False,
        error_reason=None,
        error_actor=None,
        error_at=None,
        error_role=None,
        error_recorded_at=None,
    )


def observations_until(observations: Iterable[Observation], when: datetime) -> list[Observation]:
    """The observations that had taken effect by `when`, each as it stood then."""
    return [as_it_stood(o, when) for o in observations if o.effective_at <= when]


def for_guards(observations: Iterable[Observation], now: datetime) -> tuple[Observation, ...]:
    """What a guard judging at `now` reads: observations of `now`'s calendar day or
    earlier, oldest first, without those entered in error."""
    today = now.date()
    kept = [o for o in observations if o.day <= today and not o.entered_in_error]
    return tuple(sorted(kept, key=lambda o: (o.effective_at, o.id)))


def replay(
    enrollment: Enrollment, events: Sequence[Event], when: datetime, workflow: Callable[[int], Workflow]
) -> Enrollment | None:
    """`enrollment` as it stood at `when`, from all of its `events` in seq order, each read
    with the workflow version (`workflow(version)`) the enrollment was on at the time; None
    when its first event is later."""
    past = events_until(events, when)
    if not past:
        return None
    version_after = versions_after(events, enrollment.pathway_version)
    position = opened(past[0])
    for i, event in enumerate(past[1:], 1):
        position = after_event(
            position, event, before=workflow(version_after[i - 1]), after=workflow(version_after[i])
        )
    return moved(enrollment, position, pathway_version=version_after[len(past) - 1])


def rewound(
    rows: Sequence[Enrollment],
    events_of: Callable[[list[int]], dict[int, list[Event]]],
    when: datetime,
    workflow: Callable[[Enrollment, int], Workflow],
) -> list[Enrollment]:
    """`rows` as they stood at `when`: one changed since is replayed from its events (read
    with `events_of`, only for those), one that began after is left out."""
    later = [e.id for e in rows if e.last_event_at > when]
    events = events_of(later) if later else {}
    result = []
    for e in rows:
        if e.last_event_at <= when:
            result.append(e)
            continue
        mine = sorted(events.get(e.id, []), key=lambda x: x.seq)
        then = replay(e, mine, when, lambda version, e=e: workflow(e, version))  # type: ignore[misc]
        if then is not None:
            result.append(then)
    return result
