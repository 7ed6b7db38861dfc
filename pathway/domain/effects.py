"""What an event does to where an enrollment stands: the one place that says it.

`advance` writes it, the store's staged batches keep it, and replaying the event log
(status and lists as of a past time, the audit check) recomputes it, all through
`after_event`: a hold remembers the state it came from, a return from a hold goes
back there, a terminal state closes the enrollment, and a change of state starts a
new stay (a trigger that stays in its state, or a migration, does not).
"""

from __future__ import annotations

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
