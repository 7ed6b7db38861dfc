"""The coordinator's worklist: what needs action today, most urgent first.

Each item says the next action: a stay over its state's SLA (a hold past its
SLA included), a referral-to-treatment clock at or near breach, a guarded step
that is now ready, a guarded step still blocked (naming the missing
criterion), or a 3, 6 or 12-month follow-up that is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pathway.clinic import Clinic
from pathway.domain.machine import GUARD_FAULT
from pathway.domain.timeutil import days_between
from pathway.reports import NEAR_BREACH_WEEKS, RTT_STANDARD_WEEKS, RTT_STOP_STATES
from pathway.service.results import iso

FOLLOW_UP_MONTHS = (3, 6, 12)
DUE_BEFORE_DAYS = 14
DUE_AFTER_DAYS = 30


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


def worklist(clinic: Clinic, *, as_of: datetime, role: str | None = None) -> list[Item]:
    items: list[Item] = []
    for summary in clinic.list(open_only=True, at=as_of):
        workflow = clinic.catalog.get(summary.pathway, summary.version)
        # As it stood at as_of (`list` replayed the state): later events are not yet known.
        history = clinic.history(summary.patient, pathway=summary.pathway, at=as_of)
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
        treated = any(e.trigger == "perform_ablation" or e.to_state in RTT_STOP_STATES for e in history[1:])
        if history and not treated:
            weeks = days_between(history[0].effective_at, as_of) / 7  # calendar days, as the report
            if weeks > RTT_STANDARD_WEEKS:
                add("rtt_breach", f"referral-to-treatment {weeks:.1f} weeks: past 18", 1000 + weeks)
            elif weeks >= NEAR_BREACH_WEEKS:
                add("rtt_at_risk", f"referral-to-treatment {weeks:.1f} weeks: breach at 18", 400 + weeks)
        if summary.state == "follow_up":
            _follow_up_due(clinic, summary.patient, summary.pathway, history, as_of, add)
        forward = {
            t.trigger
            for t in workflow.transitions_from(summary.state)
            if t.guards
            and not t.auto
            and t.dest in workflow.states
            and not workflow.state(t.dest).terminal
            and not workflow.state(t.dest).hold
        }
        for check in clinic.check(summary.patient, at=as_of, pathway=summary.pathway, role=role):
            fault = next((f for v in check.verdicts for f in v.failures if f.criterion == GUARD_FAULT), None)
            if fault is not None:  # a plug-in's bug, not the patient's record: say so first
                add("guard_error", f"cannot judge {check.trigger}: {fault.message}", 900, check.trigger)
                continue
            if check.trigger not in forward or (role and not check.role_allowed):
                continue
            if check.allowed:
                add("ready", f"ready: {check.trigger} -> {check.dest}", 200, check.trigger)
            else:
                first = check.failures[0].message if check.failures else "a guard fails"
                add("blocked", f"blocked: {check.trigger}: {first}", 100, check.trigger)
        items += found
    return sorted(items, key=lambda i: (-i.urgency, i.patient))


def _follow_up_due(
    clinic: Clinic, patient: str, pathway: str, history: list[Any], as_of: datetime, add: Any
) -> None:
    ablations = [e for e in history if e.trigger == "perform_ablation"]
    if not ablations:
        return
    done = ablations[-1].effective_at
    recorded = [
        o.effective_at
        for o in clinic.observations(patient, pathway=pathway, kind="follow_up", at=as_of)
        if not o.entered_in_error and o.effective_at.date() <= as_of.date()
    ]
    for months in FOLLOW_UP_MONTHS:
        target = done + timedelta(days=round(months * 30.44))
        opens, closes = target - timedelta(days=DUE_BEFORE_DAYS), target + timedelta(days=DUE_AFTER_DAYS)
        if any(opens <= when <= closes for when in recorded):
            continue
        if opens <= as_of <= closes:
            late = max(0, days_between(target, as_of))
            add("follow_up_due", f"{months}-month follow-up due (target {iso(target.date())})", 300 + late)
            return
