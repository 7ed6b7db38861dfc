"""What the API returns: plain frozen dataclasses with a stable `to_dict()` for JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pathway.domain.machine import TriggerCheck
from pathway.domain.record import Event, Observation
from pathway.domain.timeutil import iso
from pathway.domain.verdicts import reasons


def check_dict(check: TriggerCheck) -> dict[str, Any]:
    return {
        "trigger": check.trigger,
        "to": check.dest,
        "allowed": check.allowed,
        "role_allowed": check.role_allowed,
        "roles": list(check.roles),
        "reasons": reasons(list(check.verdicts)),
    }


@dataclass(frozen=True)
class Status:
    """Where one enrollment stands, and what could happen next."""

    patient: str
    name: str | None
    pathway: str
    version: int
    profile: str
    enrollment_id: int
    enrollment_version: int
    state: str
    held_from: str | None
    since: datetime
    days_in_state: int
    sla_days: int | None
    overdue: bool
    open: bool
    opened_at: datetime
    closed_at: datetime | None
    triggers: tuple[TriggerCheck, ...] = ()
    #: The clinic's time zone, in which `since_day` (and every day count) is a calendar date.
    timezone: str = "UTC"
    since_day: date | None = None
    #: The system of the patient's identifier, when known (a FHIR import keeps it).
    identifier_system: str | None = None
    #: The referral the episode came from (see `Enrollment.referral`).
    referral: tuple[str | None, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "name": self.name,
            "pathway": self.pathway,
            "version": self.version,
            "profile": self.profile,
            "enrollment_id": self.enrollment_id,
            "enrollment_version": self.enrollment_version,
            "state": self.state,
            "held_from": self.held_from,
            "since": iso(self.since),
            "days_in_state": self.days_in_state,
            "sla_days": self.sla_days,
            "overdue": self.overdue,
            "open": self.open,
            "opened_at": iso(self.opened_at),
            "closed_at": iso(self.closed_at),
            "triggers": [check_dict(c) for c in self.triggers],
            "timezone": self.timezone,
            "since_day": iso(self.since_day or self.since.date()),
            "identifier_system": self.identifier_system,
            "referral": None
            if self.referral is None
            else {"system": self.referral[0], "value": self.referral[1]},
        }


@dataclass(frozen=True)
class Transitioned:
    """The result of a successful `advance`."""

    patient: str
    pathway: str
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "refused": False,
            "patient": self.patient,
            "pathway": self.pathway,
            "trigger": self.trigger,
            "from": self.from_state,
            "to": self.to_state,
            "at": iso(self.at),
            "seq": self.seq,
        }


def event_dict(event: Event, patient: str | None = None, pathway: str | None = None) -> dict[str, Any]:
    result = event.to_dict()
    if patient is not None:
        result = {"patient": patient, "pathway": pathway, **result}
    return result


def event_dicts(events: list[Event]) -> list[dict[str, Any]]:
    """`pathway history --json`: each event, a close a reopen voided marked `voided_by`
    (the reopen's seq; null for every other)."""
    voided_by = {e.voids: e.seq for e in events if e.voids is not None}
    return [{**event_dict(e), "voided_by": voided_by.get(e.seq)} for e in events]


def observation_dict(obs: Observation) -> dict[str, Any]:
    return {
        "id": obs.id,
        "kind": obs.kind,
        "data": {k: iso(v) if isinstance(v, date) else v for k, v in obs.data.items()},
        "at": iso(obs.effective_at),
        "day": iso(obs.day),
        "recorded_at": iso(obs.recorded_at),
        "actor": obs.actor,
        "role": obs.role,
        "entered_in_error": obs.entered_in_error,
        "error_reason": obs.error_reason,
        "error_actor": obs.error_actor,
        "error_at": iso(obs.error_at),
        "error_role": obs.error_role,
        "error_recorded_at": iso(obs.error_recorded_at),
    }


@dataclass(frozen=True)
class Summary:
    """One line of `list`."""

    patient: str
    name: str | None
    pathway: str
    version: int
    state: str
    since: datetime
    days_in_state: int
    sla_days: int | None
    overdue: bool
    open: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "name": self.name,
            "pathway": self.pathway,
            "version": self.version,
            "state": self.state,
            "since": iso(self.since),
            "days_in_state": self.days_in_state,
            "sla_days": self.sla_days,
            "overdue": self.overdue,
            "open": self.open,
        }


@dataclass(frozen=True)
class Migrated:
    """One enrollment considered by `migrate`: moved, or refused with the reason."""

    patient: str
    pathway: str
    state: str
    from_version: int
    to_version: int
    migrated: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "pathway": self.pathway,
            "state": self.state,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "migrated": self.migrated,
            "reason": self.reason,
        }


def audit_entries(events: list[Event], observations: list[Observation]) -> list[dict[str, Any]]:
    """Who did what and when: every event, every recorded observation and every correction,
    in the order they were entered."""
    entries: list[dict[str, Any]] = [{"type": "event", **d} for d in event_dicts(events)]
    for obs in observations:
        entries.append(
            {
                "type": "observation",
                "observation": obs.id,
                "kind": obs.kind,
                "at": iso(obs.effective_at),
                "recorded_at": iso(obs.recorded_at),
                "actor": obs.actor,
                "role": obs.role,
                "reason": None,
            }
        )
        if obs.entered_in_error:
            entries.append(
                {
                    "type": "correction",
                    "observation": obs.id,
                    "kind": obs.kind,
                    "at": iso(obs.error_at),
                    "recorded_at": iso(obs.error_recorded_at or obs.error_at),
                    "actor": obs.error_actor,
                    "role": obs.error_role,
                    "reason": obs.error_reason,
                }
            )
    entries.sort(key=lambda e: (e["recorded_at"] or "", e["type"] != "event"))
    return entries
