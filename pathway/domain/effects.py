"""What an event does to where an enrollment stands: the one place that says it.

`advance` writes it, the store's staged batches keep it, and replaying the event log
(status and lists as of a past time, the audit check) recomputes it, all through
`after_event`: a hold remembers the state it came from, a return from a hold goes
back there, a terminal state closes the enrollment, a change of state starts a new
stay (a trigger that stays in its state, or a migration, does not), and a reopen puts
the enrollment back where the close it voids found it (`live` is the log without
either, as reports read it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathway.domain.definition import Workflow
    from pathway.domain.facts import Enrollment, Event

#: Events the engine itself writes, whatever the pathway.
ENROLL = "enroll"
MIGRATE = "migrate"


@dataclass(frozen=True)
class Position:
    """Where an enrollment stands: its state and the facts that follow from its events."""

    state: str
    held_from: str | None
    entered_state_at: datetime
    closed_at: datetime | None
    last_event_at: datetime
    last_seq: int


def position_of(enrollment: Enrollment) -> Position:
    return Position(
        enrollment.state,
        enrollment.held_from,
        enrollment.entered_state_at,
        enrollment.closed_at,
        enrollment.last_event_at,
        enrollment.last_seq,
    )


def opened(event: Event) -> Position:
    """Where an enrollment stands after its first (enroll) event."""
    return Position(event.to_state, None, event.effective_at, None, event.effective_at, event.seq)


def after_event(position: Position, event: Event, *, before: Workflow, after: Workflow) -> Position:
    """Where an enrollment stands after `event`, read with the workflow version it was on
    before the event (`before`) and after it (`after`; they differ only for a migration)."""
    if event.trigger == MIGRATE:
        return replace(position, last_event_at=event.effective_at, last_seq=event.seq)
    if event.voids is not None:  # a reopen: back where the voided close found it
        return reopened(event)
    dest = after.state(event.to_state)
    if dest.hold:  # a hold remembers where it came from; a hold of a hold keeps the first
        held_from = position.held_from if before.state(position.state).hold else position.state
    else:
        held_from = None
    return Position(
        state=event.to_state,
        held_from=held_from,
        entered_state_at=position.entered_state_at
        if event.to_state == position.state
        else event.effective_at,
        closed_at=event.effective_at if dest.terminal else None,
        last_event_at=event.effective_at,
        last_seq=event.seq,
    )


def reopen_payload(before: Position) -> dict[str, str | None]:
    """What a reopen event keeps of where the enrollment stood before the close it voids:
    its hold's origin and when it entered that state (its stay goes on from then)."""
    return {"held_from": before.held_from, "entered_state_at": before.entered_state_at.isoformat()}


def reopened(event: Event) -> Position:
    """Where an enrollment stands after a reopen `event`: as before the close it voids, open."""
    payload = event.payload or {}
    entered = payload.get("entered_state_at")
    return Position(
        state=event.to_state,
        held_from=payload.get("held_from"),
        entered_state_at=datetime.fromisoformat(entered) if entered else event.effective_at,
        closed_at=None,
        last_event_at=event.effective_at,
        last_seq=event.seq,
    )


def live(events: Iterable[Event]) -> list[Event]:
    """`events` without the closes a reopen voided and without the reopens: the log as
    reports, clocks, the worklist and guards read it (the close as if it never happened)."""
    kept = list(events)
    voided = {(e.enrollment_id, e.voids) for e in kept if e.voids is not None}
    if not voided:
        return kept
    return [e for e in kept if e.voids is None and (e.enrollment_id, e.seq) not in voided]


def moved(enrollment: Enrollment, position: Position, **changes: object) -> Enrollment:
    """`enrollment` standing at `position` (and any other field in `changes`)."""
    return replace(
        enrollment,
        state=position.state,
        held_from=position.held_from,
        entered_state_at=position.entered_state_at,
        closed_at=position.closed_at,
        last_event_at=position.last_event_at,
        last_seq=position.last_seq,
        **changes,  # type: ignore[arg-type]
    )
