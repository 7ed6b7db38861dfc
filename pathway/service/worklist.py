"""The coordinator's worklist: what needs action today, most urgent first.

Each item says the next action: a stay over its state's SLA (a hold past its SLA
included), a referral-to-treatment clock at or near breach, a guarded step that is
now ready, a guarded step still blocked (naming the missing criterion), or a
follow-up that is due. What counts comes from each workflow file: its SLAs, its RTT
clock (`rtt:`), its follow-up schedule (`follow_up:`) and the states where waiting is
routine (`worklist:`), in which a blocked step is not an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from pathway.domain import asof
from pathway.domain.declarations import FollowUpSchedule, RttClock
from pathway.domain.effects import live
from pathway.domain.machine import GUARD_FAULT
from pathway.domain.record import Event
from pathway.domain.timeutil import days_between, iso

if TYPE_CHECKING:
    from pathway.service.engine import Service

#: Days in a month, for "N months after" (the schedule's targets are approximate).
MONTH_DAYS = 30.44


@dataclass(frozen=True)
class Item:
    patient: str
    pathway: str
    state: str
    kind: str  # over_sla, rtt_breach, rtt_at_risk, follow_up_due, ready, blocked, guard_error
    action: str
    urgency: float
    trigger: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "urgency": round(self.urgency, 2)}


def rtt_days(clock: RttClock, history: list[Event], as_of: datetime, zone: tzinfo = UTC) -> int | None:
    """Calendar days on the referral-to-treatment clock at `as_of` (as the RTT report counts
    them), or None when it has not started or has stopped."""
    events = sorted(asof.events_until(history, as_of), key=lambda e: e.seq)
    start = next((e for e in events if clock.starts(e)), None)
    if start is None or any(clock.stops(e) for e in events if e.seq > start.seq):
        return None
    return days_between(start.effective_at, as_of, zone)


def follow_up_due(
    schedule: FollowUpSchedule, history: list[Event], done: list[datetime], as_of: datetime
) -> tuple[int, datetime] | None:
    """(months, target time) of the scheduled follow-up open at `as_of` and not yet done
    (`done`: when the follow-ups were recorded), or None."""
    treatments = [e for e in history if e.trigger == schedule.after and e.effective_at <= as_of]
    if not treatments:
        return None
    after = treatments[-1].effective_at
    for months in schedule.months:
        target = after + timedelta(days=round(months * MONTH_DAYS))
        opens = target - timedelta(days=schedule.due_days_before)
        closes = target + timedelta(days=schedule.due_days_after)
        if any(opens <= when <= closes for when in done):
            continue
        if opens <= as_of <= closes:
            return months, target
    return None


def worklist(clinic: Service, *, as_of: datetime, role: str | None = None) -> list[Item]:
    items: list[Item] = []
    for summary in clinic.list(open_only=True, at=as_of):
        workflow = clinic.catalog.get(summary.pathway, summary.version)
        declared = workflow.declarations
        # As it stood at as_of (`list` replayed the state): later events are not yet known;
        # a close that a reopen voided never happened, for the clocks.
        history = live(clinic.history(summary.patient, pathway=summary.pathway, at=as_of))
        found: list[Item] = []

        def add(
            kind: str,
            action: str,
            urgency: float,
            trigger: str | None = None,
            found: list[Item] = found,
            summary: Any = summary,
        ) -> None:
            found.append(
                Item(summary.patient, summary.pathway, summary.state, kind, action, urgency, trigger)
            )

        state = workflow.state(summary.state)
        if state.sla_days and summary.days_in_state > state.sla_days:
            over = summary.days_in_state - state.sla_days
            what = "hold past its SLA: resume or close it" if state.hold else f"move on from {state.name}"
            add("over_sla", f"{what} ({summary.days_in_state} days, SLA {state.sla_days})", 500 + over)
        clock = declared.rtt
        waited = None if clock is None else rtt_days(clock, history, as_of, clinic.zone)
        if clock is not None and waited is not None:
            weeks = waited / 7
            if waited > clock.standard_days:
                add(
                    "rtt_breach",
                    f"referral-to-treatment {weeks:.1f} weeks: past {clock.standard_weeks}",
                    1000 + weeks,
                )
            elif waited >= clock.at_risk_weeks * 7:
                add(
                    "rtt_at_risk",
                    f"referral-to-treatment {weeks:.1f} weeks: breach at {clock.standard_weeks}",
                    400 + weeks,
                )
        schedule = declared.follow_up
        if schedule is not None and summary.state in schedule.in_states:
            recorded = clinic.observations(summary.patient, pathway=summary.pathway, kind=schedule.kind)
            done = [o.effective_at for o in asof.for_guards(recorded, as_of)]
            due = follow_up_due(schedule, history, done, as_of)
            if due is not None:
                months, target = due
                late = max(0, days_between(target, as_of))
                add(
                    "follow_up_due", f"{months}-month follow-up due (target {iso(target.date())})", 300 + late
                )
        forward = {
            t.trigger
            for t in workflow.transitions_from(summary.state)
            if t.guards
            and not t.auto
            and t.dest in workflow.states
            and not workflow.state(t.dest).terminal
            and not workflow.state(t.dest).hold
        }
        routine = summary.state in declared.worklist.routine
        for check in clinic.check(summary.patient, at=as_of, pathway=summary.pathway, role=role):
            fault = next((f for v in check.verdicts for f in v.failures if f.criterion == GUARD_FAULT), None)
            if fault is not None:  # a plug-in's bug, not the patient's record: say so first
                add("guard_error", f"cannot judge {check.trigger}: {fault.message}", 900, check.trigger)
                continue
            if check.trigger not in forward or (role and not check.role_allowed):
                continue
            if check.allowed:
                add("ready", f"ready: {check.trigger} -> {check.dest}", 200, check.trigger)
            elif not routine:
                # A criterion only time will meet (a yearly limit) is named with its date,
                # whatever else is still missing (CLINICAL.md clarification 5).
                waits = [f for f in check.failures if f.not_before is not None]
                first = (waits or list(check.failures))[0].message if check.failures else "a guard fails"
                if waits:
                    first = f"not before {iso(waits[0].not_before)}: {first}"
                add("blocked", f"blocked: {check.trigger}: {first}", 100, check.trigger)
        items += found
    return sorted(items, key=lambda i: (-i.urgency, i.patient))
