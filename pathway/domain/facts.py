"""The facts of a patient's pathway: enrollments (episodes), observations and events.

Plain frozen dataclasses, no database: the store builds them, guards read them
(through `pathway.domain.record.PatientRecord`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pathway.domain.timeutil import iso


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
    patient_id: int = 0  # the store's key for the patient
    chain_head: str | None = None  # the hash of its latest audit entry (pathway.domain.chain)
    identifier_system: str | None = None  # the system of the patient's identifier, if known
    #: The referral it came from: a FHIR ServiceRequest's identifier (system, value), or
    #: (None, "sha256:...") for one without an identifier; None when not imported from FHIR.
    referral: tuple[str | None, str] | None = None

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
    error_at: datetime | None = None  # when the correction took effect (--at)
    error_role: str | None = None
    error_recorded_at: datetime | None = None  # when the correction was entered
    chain_seq: int | None = None  # its place in the enrollment's hash chain, and its hash
    hash: str | None = None
    error_chain_seq: int | None = None  # the correction's place and hash
    error_hash: str | None = None

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
    chain_seq: int | None = None  # its place in the enrollment's hash chain, and its hash
    hash: str | None = None
    voids: int | None = None  # a reopen: the seq of the closing event it voids

    @property
    def day(self) -> date:
        return self.effective_at.date()

    def to_dict(self) -> dict[str, Any]:
        """As `pathway history --json` prints it."""
        return {
            "seq": self.seq,
            "trigger": self.trigger,
            "from": self.from_state,
            "to": self.to_state,
            "at": iso(self.effective_at),
            "recorded_at": iso(self.recorded_at),
            "actor": self.actor,
            "role": self.role,
            "reason": self.reason,
            "voids": self.voids,
        }
