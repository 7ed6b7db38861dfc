"""The coordinator's worklist: what needs action today, most urgent first.

Each item says the next action: a stay over its state's SLA (a hold past its SLA
included), a referral-to-treatment clock at or near breach, a guarded step that is
now ready, a guarded step still blocked (naming the missing criterion), or a
follow-up that is due. What counts comes from each workflow file: its SLAs, its RTT
clock (`rtt:`), its follow-up schedule (`follow_up:`) and the states where waiting is
routine (`worklist:`), in which a blocked step is not an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from pathway.domain import asof
from pathway.domain.declarations import FollowUpSchedule, OutcomeMeasure, RttClock
from pathway.domain.effects import live
from pathway.domain.machine import GUARD_FAULT
from pathway.domain.record import Event
from pathway.domain.timeutil import days_between, iso, local_day

if TYPE_CHECKING:
    from pathway.service.engine import Service

#: Days in a month, for "N months after" (the schedule's targets are approximate).
MONTH_DAYS = 30.44


@dataclass(frozen=True)
class Item:
    patient: str
    pathway: str
    state: str
    #: new_referral, over_sla, sla_due, rtt_breach, rtt_at_risk, follow_up_due, ready,
    #: blocked (data missing or a criterion not met for a step that is due), guard_error
    kind: str
    action: str
    urgency: float
    trigger: str | None = None
    #: The clinic's calendar date the action is due by (today or earlier: due now).
    due: date | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "urgency": round(self.urgency, 2), "due": iso(self.due)}


#: Days before a state's SLA runs out from which the stay is an item (`sla_due`).
SLA_DUE_DAYS = 3


def rtt_days(clock: RttClock, history: list[Event], as_of: datetime, zone: tzinfo = UTC) -> int | None:
    """Calendar days on the referral-to-treatment clock at `as_of` (as the RTT report counts
    them), or None when it has not started or has stopped."""
    start, stop = clock.span(asof.events_until(history, as_of))
    if start is None or stop is not None:
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


def still_relieved(
    outcome: OutcomeMeasure, history: list[Event], observations: Sequence[Any], zone: tzinfo
) -> bool:
    """Whether the latest measurement after the latest treatment is still a success (relief
    of at least the threshold from the latest baseline before it): the pain has not come
    back, so a repeat treatment is not due."""
    treated = [e for e in history if e.trigger in (outcome.treatment, outcome.repeat)]
    if not treated:
        return False
    after = treated[-1].effective_at
    treated_day = after.astimezone(zone).date()

    def score(o: Any, field: str) -> float | None:
        value = o.data.get(field)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    baselines = [
        o for o in observations if o.kind == outcome.baseline.kind and o.effective_at <= after
        and score(o, outcome.baseline.field) is not None
    ]  # fmt: skip
    measures = [
        o for o in observations if o.kind == outcome.measure.kind
        and o.effective_at.astimezone(zone).date() > treated_day
        and score(o, outcome.measure.field) is not None
    ]  # fmt: skip
    if not baselines or not measures:
        return False
    base = score(baselines[-1], outcome.baseline.field) or 0.0
    latest = score(measures[-1], outcome.measure.field) or 0.0
    return base > 0 and (base - latest) / base * 100 >= outcome.success_relief_pct


def worklist(
    clinic: Service,
    *,
    as_of: datetime,
    role: str | None = None,
    pathway: str | None = None,
    in_state: str | None = None,
) -> list[Item]:
    items: list[Item] = []
    for summary in clinic.list(open_only=True, at=as_of, pathway=pathway, state=in_state):
        workflow = clinic.catalog.get(summary.pathway, summary.version)
        declared = workflow.declarations
        # As it stood at as_of (`list` replayed the state): later events are not yet known;
        # a close that a reopen voided never happened, for the clocks.
        history = live(clinic.history(summary.patient, pathway=summary.pathway, at=as_of))
        found: list[Item] = []

        today = local_day(as_of, clinic.zone)

        def add(
            kind: str,
            action: str,
            urgency: float,
            trigger: str | None = None,
            due: date | None = None,
            found: list[Item] = found,
            summary: Any = summary,
            today: date = today,
        ) -> None:
            found.append(
                Item(
                    summary.patient,
                    summary.pathway,
                    summary.state,
                    kind,
                    action,
                    urgency,
                    trigger,
                    due or today,
                )
            )

        state = workflow.state(summary.state)
        if len(history) == 1 and summary.state == workflow.initial:
            # Referred, nothing done yet: triage it today, whatever its SLA says.
            steps = [
                t.trigger
                for t in workflow.transitions_from(summary.state)
                if not t.auto and t.dest in workflow.states and not workflow.state(t.dest).hold
            ]
            new_for = summary.days_in_state
            add(
                "new_referral",
                f"new referral ({new_for} days): triage: {', '.join(dict.fromkeys(steps))}",
                600 + new_for,
            )
        if state.sla_days and summary.days_in_state > state.sla_days:
            over = summary.days_in_state - state.sla_days
            what = "hold past its SLA: resume or close it" if state.hold else f"move on from {state.name}"
            passed = today - timedelta(days=over)
            add(
                "over_sla",
                f"{what} ({summary.days_in_state} days, SLA {state.sla_days})",
                500 + over,
                due=passed,
            )
        elif state.sla_days and summary.days_in_state >= state.sla_days - SLA_DUE_DAYS:
            left = state.sla_days - summary.days_in_state
            what = "hold: resume or close it" if state.hold else f"move on from {state.name}"
            ends = today + timedelta(days=left)
            add(
                "sla_due",
                f"{what}: SLA ends in {left} days ({summary.days_in_state} of {state.sla_days})",
                450 - left,
                due=ends,
            )
        clock = declared.rtt
        waited = None if clock is None else rtt_days(clock, history, as_of, clinic.zone)
        if clock is not None and waited is not None:
            weeks = waited / 7
            breach = today + timedelta(days=clock.standard_days - waited)
            if waited > clock.standard_days:
                add(
                    "rtt_breach",
                    f"treat or decide now: referral-to-treatment {weeks:.1f} weeks, "
                    f"past {clock.standard_weeks}",
                    1000 + weeks,
                    due=breach,
                )
            elif waited >= clock.at_risk_weeks * 7:
                add(
                    "rtt_at_risk",
                    f"book the next step: referral-to-treatment {weeks:.1f} weeks, breach at "
                    f"{clock.standard_weeks} in {clock.standard_days - waited} days",
                    400 + weeks,
                    due=breach,
                )
        schedule = declared.follow_up
        if schedule is not None and summary.state in schedule.in_states:
            recorded = clinic.observations(summary.patient, pathway=summary.pathway, kind=schedule.kind)
            done = [o.effective_at for o in asof.for_guards(recorded, as_of)]
            due = follow_up_due(schedule, history, done, as_of)
            if due is not None:
                months, target = due
                late = max(0, days_between(target, as_of))
                when = local_day(target, clinic.zone)
                what = f"overdue by {late} days" if late else "due"
                add(
                    "follow_up_due",
                    f"{months}-month follow-up {what} (target {iso(when)})",
                    300 + late,
                    due=when,
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
        outcome = declared.outcome
        relieved: bool | None = None
        for check in clinic.check(summary.patient, at=as_of, pathway=summary.pathway, role=role):
            fault = next((f for v in check.verdicts for f in v.failures if f.criterion == GUARD_FAULT), None)
            if fault is not None:  # a plug-in's bug, not the patient's record: say so first
                add("guard_error", f"cannot judge {check.trigger}: {fault.message}", 900, check.trigger)
                continue
            if check.trigger not in forward or (role and not check.role_allowed):
                continue
            if check.allowed:
                if outcome is not None and check.trigger == outcome.repeat:
                    # A repeat is due when the pain has come back, never after a success.
                    if relieved is None:
                        found_obs = clinic.observations(summary.patient, pathway=summary.pathway, at=as_of)
                        relieved = still_relieved(
                            outcome, history, asof.for_guards(found_obs, as_of), clinic.zone
                        )
                    if relieved:
                        continue
                add("ready", f"ready: {check.trigger} -> {check.dest}", 200, check.trigger)
                continue
            # A criterion only time will meet (a yearly limit) is named with its date,
            # whatever else is still missing, even where waiting is routine
            # (CLINICAL.md clarification 5).
            waits = [f for f in check.failures if f.not_before is not None]
            if not waits and (routine or all(f.awaiting for f in check.failures)):
                continue  # waiting as planned (a routine state, or the step not yet taken)
            # Name what can be done now: a date, else what is missing or not met, before what
            # only the planned step itself will record.
            pending = [f for f in check.failures if not f.awaiting] or list(check.failures)
            first = (waits or pending)[0].message if check.failures else "a guard fails"
            if waits:
                first = f"not before {iso(waits[0].not_before)}: {first}"
            add("blocked", f"blocked: {check.trigger}: {first}", 100, check.trigger)
        items += found
    return sorted(items, key=lambda i: (-i.urgency, i.patient))
