"""One rule for every way an episode starts (enroll, CSV and FHIR import): a patient's
episodes in one body region may not overlap (CLINICAL.md clarification 8).

A new episode of a pathway starting at `start` overlaps when another episode of the
patient in the same region is still open, or when it starts before the latest of them
closed. The callers word the refusal; this module only judges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar


class Episode(Protocol):
    """What the rule reads of an episode (an `Enrollment` is one)."""

    @property
    def pathway(self) -> str: ...

    @property
    def closed_at(self) -> datetime | None: ...


class Span(NamedTuple):
    """An episode as the bulk import reads it: its pathway, when it opened and closed."""

    pathway: str
    opened_at: datetime
    closed_at: datetime | None


E = TypeVar("E", bound=Episode)


@dataclass(frozen=True)
class Overlap(Generic[E]):
    """Why a new episode may not start: an episode still open in the region (`open`), or
    the latest close in the region it would start before (`closed_at`)."""

    region: str
    open: E | None = None
    closed_at: datetime | None = None


def overlap(
    episodes: Iterable[E], pathway: str, start: datetime, region: Callable[[str], str]
) -> Overlap[E] | None:
    """The overlap a new episode of `pathway` starting at `start` would make with the
    patient's `episodes`, or None when it may start. `region` maps a pathway to its body
    region (its own id when it names none)."""
    mine = region(pathway)
    same = [e for e in episodes if region(e.pathway) == mine]
    still_open = sorted((e for e in same if e.closed_at is None), key=lambda e: e.pathway != pathway)
    if still_open:
        return Overlap(mine, open=still_open[0])
    closed = max((e.closed_at for e in same if e.closed_at is not None), default=None)
    if closed is not None and start < closed:
        return Overlap(mine, closed_at=closed)
    return None
