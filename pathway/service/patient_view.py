"""One patient on one screen (`pathway show`): every episode with its state and days
against the SLA, its referral-to-treatment clock, what each possible step still needs,
and the observations with their values, newest first (corrections marked with who made
them, when and why).

What the clock and the SLAs are comes from each workflow file (`rtt:`, `sla_days`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.domain.effects import live
from pathway.domain.timeutil import days_between, iso, utcnow
from pathway.service.results import check_dict, observation_dict

if TYPE_CHECKING:
    from pathway.domain.declarations import RttClock
    from pathway.domain.record import Event
    from pathway.service.engine import Service


def rtt_clock(clock: RttClock | None, events: list[Event], now: datetime, zone: Any) -> dict[str, Any] | None:
    """The episode's RTT clock: days from the referral to treatment (or to now, while it
    runs), against the standard; None when the pathway has no clock or it never started."""
    if clock is None:
        return None
    start, stop = clock.span(live(events))
    if start is None:
        return None
    end = stop.effective_at if stop is not None else now
    days = max(0, days_between(start.effective_at, end, zone))
    return {
        "running": stop is None,
        "started": iso(start.effective_at),
        "stopped": iso(stop.effective_at) if stop is not None else None,
        "stopped_by": stop.trigger if stop is not None else None,
        "days": days,
        "weeks": round(days / 7, 1),
        "standard_weeks": clock.standard_weeks,
        "breached": days > clock.standard_days,
        "at_risk": stop is None and clock.at_risk_weeks * 7 <= days <= clock.standard_days,
    }


def patient_view(clinic: Service, patient: str, *, role: str | None = None) -> dict[str, Any]:
    """Everything `pathway show PATIENT` prints (its `--json`); with `role`, each step's
    `role_allowed` is that role's (the workspace's patient page)."""
    now = utcnow()
    episodes = clinic.episodes(patient, role=role)  # NotFound for an unknown patient
    shown = []
    observations: list[dict[str, Any]] = []
    for status in reversed(episodes):  # newest episode first
        workflow = clinic.catalog.get(status.pathway, status.version)
        at = None if status.open else status.closed_at
        events = clinic.history(patient, pathway=status.pathway, at=at)
        own = clinic.observations(patient, pathway=status.pathway, at=at)
        if at is not None:
            own = [o for o in own if o.effective_at <= at]
        shown.append(
            {
                "pathway": status.pathway,
                "version": status.version,
                "title": workflow.title,
                "enrollment_id": status.enrollment_id,
                "state": status.state,
                "held_from": status.held_from,
                "open": status.open,
                "opened_at": iso(status.opened_at),
                "closed_at": iso(status.closed_at),
                "since": iso(status.since),
                "days_in_state": status.days_in_state,
                "sla_days": status.sla_days,
                "overdue": status.overdue,
                "rtt": rtt_clock(workflow.declarations.rtt, events, now, clinic.zone),
                "next": [check_dict(c) for c in status.triggers],
            }
        )
        observations += [{**observation_dict(o), "pathway": status.pathway} for o in own]
    observations.sort(key=lambda o: (o["at"], o["id"]), reverse=True)
    first = episodes[-1]
    return {
        "patient": first.patient,
        "name": first.name,
        "timezone": first.timezone,
        "episodes": shown,
        "observations": observations,
    }
