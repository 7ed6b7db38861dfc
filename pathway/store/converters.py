"""Rows read from the database as the domain's frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pathway.domain.facts import Enrollment, Event, Observation
from pathway.domain.timeutil import from_storage


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else from_storage(value)


def _utc(value: datetime) -> datetime:
    return from_storage(value)


def enrollment(m: Mapping[str, Any] | Any) -> Enrollment:
    return Enrollment(
        id=m["id"],
        patient=m["identifier"],
        display_name=m["display_name"],
        patient_id=m["patient_id"],
        pathway=m["pathway_id"],
        pathway_version=m["pathway_version"],
        profile=m["profile"],
        state=m["state"],
        held_from=m["held_from"],
        entered_state_at=_utc(m["entered_state_at"]),
        opened_at=_utc(m["opened_at"]),
        closed_at=_aware(m["closed_at"]),
        version=m["version"],
        last_event_at=_utc(m["last_event_at"]),
        last_seq=m["last_seq"],
        chain_head=m.get("chain_head"),
        identifier_system=m.get("identifier_system"),
        referral=None if m.get("referral_value") is None else (m.get("referral_system"), m["referral_value"]),
    )


def observation(m: Mapping[str, Any] | Any) -> Observation:
    return Observation(
        id=m["id"],
        enrollment_id=m["enrollment_id"],
        kind=m["kind"],
        data=m["data"],
        effective_at=_utc(m["effective_at"]),
        recorded_at=_utc(m["recorded_at"]),
        actor=m["actor"],
        role=m["role"],
        entered_in_error=bool(m["entered_in_error"]),
        error_reason=m["error_reason"],
        error_actor=m["error_actor"],
        error_at=_aware(m["error_at"]),
        error_role=m["error_role"],
        error_recorded_at=_aware(m["error_recorded_at"]),
        chain_seq=m.get("chain_seq"),
        hash=m.get("hash"),
        error_chain_seq=m.get("error_chain_seq"),
        error_hash=m.get("error_hash"),
    )


def event(m: Mapping[str, Any] | Any) -> Event:
    return Event(
        enrollment_id=m["enrollment_id"],
        seq=m["seq"],
        trigger=m["trigger"],
        from_state=m["from_state"],
        to_state=m["to_state"],
        actor=m["actor"],
        role=m["role"],
        effective_at=_utc(m["effective_at"]),
        recorded_at=_utc(m["recorded_at"]),
        reason=m["reason"],
        payload=m["payload"] or {},
        chain_seq=m.get("chain_seq"),
        hash=m.get("hash"),
        voids=m.get("voids"),
    )
