"""The spine pathways' procedure guards: the ablation's safety and limits (clarification 5:
the first date the 12-month limit allows), recovery, repeat criteria, discharge, and
contact attempts (clarification 6)."""

from __future__ import annotations

from datetime import date, timedelta

from pathway.domain.guards import guard
from pathway.domain.record import Observation, PatientRecord
from pathway.domain.timeutil import in_last_12_months, plus_months
from pathway.domain.verdicts import Criteria, Verdict
from pathway_workflows.spine_common import Params, ablations, last_two_blocks, relief


@guard(
    "procedure_safety",
    reads={
        "ablation": ("side", "levels", "technique", "guidance"),
        "block": ("side", "levels"),
        "safety": (
            "anticoagulant",
            "anticoagulant_plan",
            "implanted_device",
            "device_plan",
            "pregnant",
            "site_infection",
        ),
    },
    params=(
        "ablation_techniques",
        "ablation_guidance",
        "max_levels_per_session",
        "max_ablations_per_year",
    ),
)
def procedure_safety(record: PatientRecord, params: Params) -> Verdict:
    """The procedure recorded today is allowed, covered by the blocks, within limits, and safe."""
    c = Criteria("procedure_safety")
    today = [o for o in record.of_kind("ablation") if o.day == record.today]
    if not today:
        c.fail(
            "ablation_recorded",
            f"no ablation is recorded for {record.today.isoformat()}: "
            "record the procedure (side, levels, technique, guidance)",
            awaiting=True,  # recorded when it is performed
        )
    else:
        proc = today[-1]
        techniques = list(params["ablation_techniques"])
        c.require(
            proc["technique"] in techniques,
            "technique",
            f"technique {proc['technique']} is not allowed (allowed: {', '.join(techniques)})",
        )
        guidance = list(params["ablation_guidance"])
        c.require(
            proc["guidance"] in guidance,
            "guidance",
            f"guidance {proc['guidance']} is not allowed (allowed: {', '.join(guidance)})",
        )
        levels = set(proc["levels"])
        most = params["max_levels_per_session"]
        c.require(
            len(levels) <= most,
            "levels_per_session",
            f"{len(levels)} levels in one session; at most {most} are allowed",
        )
        _covered_by_blocks(record, proc, c)
    done = [e.day for e in ablations(record, region=True)]
    count = 1 + sum(1 for day in done if in_last_12_months(day, record.today))
    limit = params["max_ablations_per_year"]
    if count > limit:
        allowed = first_allowed_day(done, record.today, limit)
        c.fail(
            "ablations_per_year",
            f"this would be ablation {count} in the 12 months up to {record.today.isoformat()}; "
            f"at most {limit} are allowed: the first date it is allowed is {allowed.isoformat()}",
            not_before=allowed,
        )
    _safe(record, c)
    return c.verdict()


def first_allowed_day(done: list[date], today: date, limit: int) -> date:
    """The first day from `today` on whose 12 months up to it hold fewer than `limit` of the
    ablations `done` (clarification 5: the refusal says when it would be allowed)."""
    day = today
    while 1 + sum(1 for d in done if in_last_12_months(d, day)) > limit:
        day += timedelta(days=1)
    return day


def _covered_by_blocks(record: PatientRecord, proc: Observation, c: Criteria) -> None:
    blocks = last_two_blocks(record)
    if len(blocks) < 2:
        c.fail("covered_by_blocks", "the ablation is not covered by two diagnostic blocks")
        return
    sides = {b["side"] for b in blocks}
    if sides != {"bilateral"}:
        c.require(
            sides == {proc["side"]},
            "covered_side",
            f"ablation side {proc['side']} is not the side blocked ({', '.join(sorted(sides))})",
        )
    blocked = set(blocks[0]["levels"]) & set(blocks[1]["levels"])
    outside = sorted(set(proc["levels"]) - blocked)
    c.require(
        not outside,
        "covered_levels",
        f"levels {','.join(outside)} were not blocked "
        f"(blocked: {','.join(sorted(blocked)) or 'none in both blocks'})",
    )


def _safe(record: PatientRecord, c: Criteria) -> None:
    safety = record.latest("safety")
    if not c.require(
        safety is not None,
        "safety_recorded",
        "no safety check is recorded: record safety before the procedure",
    ):
        return
    assert safety is not None
    if safety["anticoagulant"]:
        c.require(
            safety["anticoagulant_plan"],
            "anticoagulant_plan",
            "the patient takes an anticoagulant and there is no anticoagulant plan",
        )
    if safety["implanted_device"] != "none":
        c.require(
            safety["device_plan"],
            "device_plan",
            f"implanted device ({safety['implanted_device']}) without a device plan",
        )
    c.require(not safety["pregnant"], "pregnant", "the patient is pregnant")
    c.require(not safety["site_infection"], "site_infection", "infection at the procedure site")


@guard("recovery_period", params=("recovery_min_days",))
def recovery_period(record: PatientRecord, params: Params) -> Verdict:
    """Enough days have passed since the ablation to begin follow-up."""
    c = Criteria("recovery_period")
    done = ablations(record)
    if not c.require(bool(done), "ablation_performed", "no ablation has been performed"):
        return c.verdict()
    days = (record.today - done[-1].day).days
    need = params["recovery_min_days"]
    c.require(
        days >= need,
        "recovery_days",
        f"{days} days since the ablation on {done[-1].day.isoformat()}; at least {need} are needed",
    )
    return c.verdict()


@guard(
    "repeat_criteria",
    reads={"baseline": ("nrs",), "follow_up": ("nrs",)},
    params=(
        "max_months_since_ablation_for_repeat",
        "min_repeat_relief_pct",
        "min_repeat_relief_days",
    ),
)
def repeat_criteria(record: PatientRecord, params: Params) -> Verdict:
    """The last ablation gave lasting relief and is recent enough to repeat without new blocks."""
    c = Criteria("repeat_criteria")
    done = ablations(record)
    if not c.require(bool(done), "ablation_performed", "no ablation has been performed"):
        return c.verdict()
    last = done[-1].day
    months = params["max_months_since_ablation_for_repeat"]
    c.require(
        plus_months(last, months) >= record.today,
        "ablation_age",
        f"the last ablation on {last.isoformat()} was more than {months} months ago: use rediagnose",
    )
    baselines = [o for o in record.of_kind("baseline") if o.day <= last]
    if not baselines or baselines[-1]["nrs"] <= 0:
        c.fail(
            "baseline_nrs",
            f"no baseline NRS above 0 was recorded before the ablation on {last.isoformat()}",
        )
        return c.verdict()
    base = baselines[-1]["nrs"]
    follow_ups = [o for o in record.of_kind("follow_up") if o.day > last]
    if not follow_ups:
        c.fail("follow_up", f"no follow_up is recorded since the ablation on {last.isoformat()}")
        return c.verdict()
    need_pct = params["min_repeat_relief_pct"]
    end = next((f for f in follow_ups if relief(base, f["nrs"]) < need_pct), follow_ups[-1])
    lasted = (end.day - last).days
    need_days = params["min_repeat_relief_days"]
    c.require(
        lasted >= need_days,
        "relief_duration",
        f"relief of at least {need_pct}% lasted {lasted} days after the ablation on "
        f"{last.isoformat()}, below the {need_days}-day minimum",
    )
    return c.verdict()


@guard("follow_up_recorded", reads={"follow_up": ("nrs",)})
def follow_up_recorded(record: PatientRecord, params: Params) -> Verdict:
    """At least one follow-up after the last ablation."""
    c = Criteria("follow_up_recorded")
    done = ablations(record)
    if not c.require(bool(done), "ablation_performed", "no ablation has been performed"):
        return c.verdict()
    last = done[-1].day
    c.require(
        any(o.day > last for o in record.of_kind("follow_up")),
        "follow_up",
        f"no follow_up is recorded after the ablation on {last.isoformat()}",
    )
    return c.verdict()


@guard(
    "contact_attempts_exhausted",
    reads={"contact_attempt": ("outcome",)},
    params=("lost_min_attempts", "lost_min_span_days"),
)
def contact_attempts_exhausted(record: PatientRecord, params: Params) -> Verdict:
    """Enough unanswered contact attempts over enough days to call the patient lost: those
    after the latest time the patient was reached (clarification 6)."""
    c = Criteria("contact_attempts_exhausted")
    attempts = record.of_kind("contact_attempt")
    reached = [i for i, o in enumerate(attempts) if o["outcome"] == "reached"]
    since = attempts[reached[-1] + 1 :] if reached else attempts
    misses = [o for o in since if o["outcome"] == "no_response"]
    need = params["lost_min_attempts"]
    after = f" since the patient was reached on {attempts[reached[-1]].day.isoformat()}" if reached else ""
    c.require(
        len(misses) >= need,
        "attempts",
        f"{len(misses)} unanswered contact attempts{after}; at least {need} are needed",
    )
    span_need = params["lost_min_span_days"]
    if len(misses) >= 2:  # with fewer, the count above already says what is missing
        span = (misses[-1].day - misses[0].day).days
        c.require(
            span >= span_need,
            "attempt_span",
            f"unanswered attempts span {span} days; the first and last must be at least "
            f"{span_need} days apart",
        )
    elif span_need > 0 and len(misses) >= need:
        c.fail(
            "attempt_span",
            f"the first and last unanswered attempts must be at least {span_need} days apart",
        )
    return c.verdict()
