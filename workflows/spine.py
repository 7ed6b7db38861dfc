"""Guards of the spine pathways (cervical and lumbar medial branch RF neurotomy).

Pure functions of a read-only `PatientRecord` and the workflow's parameters;
each returns every failed criterion with the value seen and the threshold or
fix (CLINICAL.md, "Guards, precisely"). Nothing here is region-specific: the
levels come from the observations, the thresholds from the workflow file.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from fractions import Fraction
from typing import Any

from pathway.domain.guards import GuardSpec, guard
from pathway.domain.record import Event, Observation, PatientRecord
from pathway.domain.timeutil import in_last_12_months, plus_months
from pathway.domain.verdicts import Criteria, Verdict

Params = Mapping[str, Any]

BLOCK_FIELDS = (
    "side",
    "levels",
    "agent",
    "guidance",
    "sedation",
    "pre_nrs",
    "post_nrs",
    "relief_hours",
)


def pct(value: Fraction | float) -> str:
    """A percentage to one decimal, truncated (79.99 shows 79.9, never 80), no trailing .0."""
    tenths = int(Fraction(value) * 10)  # int() truncates toward zero
    whole, frac = divmod(abs(tenths), 10)
    sign = "-" if tenths < 0 else ""
    return f"{sign}{whole}" if frac == 0 else f"{sign}{whole}.{frac}"


def relief(pre: int, post: int) -> Fraction:
    """Exact relief percentage: 100 * (pre - post) / pre."""
    return Fraction(100 * (pre - post), pre)


def hours(value: float) -> str:
    return f"{value:g} h"


# --- eligibility --------------------------------------------------------------------------


@guard(
    "eligibility",
    reads={
        "baseline": ("onset_date", "nrs", "axial_predominant", "radiculopathy", "red_flags"),
        "conservative_care": ("weeks", "outcome"),
        "imaging": ("non_facet_pathology",),
    },
    params=("min_pain_days", "min_conservative_weeks", "min_baseline_nrs"),
)
def eligibility(record: PatientRecord, params: Params) -> Verdict:
    """Eligible for diagnostic blocks: pain duration, failed conservative care, axial pain..."""
    c = Criteria("eligibility")
    baseline = record.latest("baseline")
    if c.require(baseline is not None, "baseline", "no baseline is recorded: record the baseline evaluation"):
        assert baseline is not None
        onset: date = baseline["onset_date"]
        days = (record.today - onset).days
        need = params["min_pain_days"]
        c.require(
            days >= need,
            "pain_duration",
            f"pain duration {days} days (since {onset.isoformat()}) is below the {need}-day minimum",
        )
        c.require(
            baseline["axial_predominant"] is True,
            "axial_predominant",
            "axial_predominant is false: the pain must be predominantly axial",
        )
        nrs, min_nrs = baseline["nrs"], params["min_baseline_nrs"]
        c.require(nrs >= min_nrs, "baseline_nrs", f"baseline NRS {nrs} is below the minimum of {min_nrs}")
        c.require(
            baseline["radiculopathy"] != "untreated",
            "radiculopathy",
            "untreated radiculopathy excludes neurotomy: treat it first",
        )
        flags = list(baseline["red_flags"])
        c.require(not flags, "red_flags", f"red flags present: {', '.join(flags)}")
    weeks = sum(
        o["weeks"] for o in record.of_kind("conservative_care") if o["outcome"] in ("failed", "not_tolerated")
    )
    need_weeks = params["min_conservative_weeks"]
    c.require(
        weeks >= need_weeks,
        "conservative_care",
        f"failed or not tolerated conservative care totals {weeks} weeks, below the "
        f"{need_weeks}-week minimum",
    )
    _no_non_facet_pathology(record, c)
    return c.verdict()


def _no_non_facet_pathology(record: PatientRecord, c: Criteria) -> None:
    for o in record.of_kind("imaging"):
        c.require(
            not o["non_facet_pathology"],
            "non_facet_pathology",
            f"imaging on {o.day.isoformat()} ({o['modality']}) shows non-facet pathology",
        )


@guard("imaging_reviewed", reads={"imaging": ("modality", "non_facet_pathology")})
def imaging_reviewed(record: PatientRecord, params: Params) -> Verdict:
    """Imaging is recorded and shows no non-facet pathology."""
    c = Criteria("imaging_reviewed")
    c.require(
        bool(record.of_kind("imaging")),
        "imaging_recorded",
        "no imaging is recorded: record the imaging review",
    )
    _no_non_facet_pathology(record, c)
    return c.verdict()


# --- diagnostic blocks --------------------------------------------------------------------


def block_problems(block: Observation, params: Params) -> list[tuple[str, str]]:
    """Why a block is not valid or not positive: (criterion, detail) pairs; empty when positive."""
    problems: list[tuple[str, str]] = []
    allowed_guidance = list(params["block_guidance"])
    if block["guidance"] not in allowed_guidance:
        problems.append(
            (
                "guidance",
                f"guidance {block['guidance']} is not accepted (allowed: {', '.join(allowed_guidance)})",
            )
        )
    allowed_sedation = list(params["block_sedation"])
    if block["sedation"] not in allowed_sedation:
        problems.append(
            (
                "sedation",
                f"sedation {block['sedation']} makes it invalid (allowed: {', '.join(allowed_sedation)})",
            )
        )
    pre, post = block["pre_nrs"], block["post_nrs"]
    if pre <= 0:
        problems.append(("pre_nrs", "pre-block NRS is 0, so relief cannot be measured"))
    else:
        value = relief(pre, post)
        need = params["min_block_relief_pct"]
        if value < need:
            problems.append(("relief", f"relief {pct(value)}% is below the {need}% threshold"))
    minimum = params["agent_min_relief_hours"].get(block["agent"], 0)
    if block["relief_hours"] < minimum:
        problems.append(
            (
                "relief_hours",
                f"relief lasted {hours(block['relief_hours'])}, "
                f"below the {hours(minimum)} expected of "
                f"{block['agent']}",
            )
        )
    return problems


def last_two_blocks(record: PatientRecord) -> tuple[Observation, ...]:
    return record.of_kind("block")[-2:]


@guard(
    "two_qualifying_blocks",
    reads={"block": BLOCK_FIELDS},
    params=(
        "block_guidance",
        "block_sedation",
        "min_block_relief_pct",
        "agent_min_relief_hours",
        "min_block_interval_days",
    ),
)
def two_qualifying_blocks(record: PatientRecord, params: Params) -> Verdict:
    """The two most recent blocks are both positive and concordant."""
    c = Criteria("two_qualifying_blocks")
    pair = last_two_blocks(record)
    if len(pair) < 2:
        c.fail("two_blocks", f"two diagnostic blocks are needed; {len(pair)} recorded")
        return c.verdict()
    first, second = pair
    for label, block in (("first", first), ("second", second)):
        for criterion, detail in block_problems(block, params):
            c.fail(f"{label}_block_{criterion}", f"{label} block ({block.day.isoformat()}) {detail}")
    c.require(
        first["side"] == second["side"],
        "same_side",
        f"the blocks were on different sides ({first['side']}, then {second['side']})",
    )
    if set(first["levels"]) != set(second["levels"]):
        c.fail(
            "same_levels",
            f"the blocks were at different levels "
            f"({','.join(first['levels'])}, then {','.join(second['levels'])})",
        )
    gap = (second.day - first.day).days
    need = params["min_block_interval_days"]
    c.require(
        gap >= need,
        "block_interval",
        f"the blocks were {gap} days apart; at least {need} are needed",
    )
    agents = {first["agent"]: first, second["agent"]: second}
    if set(agents) == {"lidocaine", "bupivacaine"}:
        lido, bupi = agents["lidocaine"], agents["bupivacaine"]
        c.require(
            bupi["relief_hours"] > lido["relief_hours"],
            "concordant_response",
            f"bupivacaine relief ({hours(bupi['relief_hours'])}) did not outlast lidocaine "
            f"relief ({hours(lido['relief_hours'])}): the response is not concordant",
        )
    return c.verdict()


@guard(
    "block_session_limit",
    reads={"block": ("levels",)},
    params=("max_diagnostic_sessions_per_year",),
)
def block_session_limit(record: PatientRecord, params: Params) -> Verdict:
    """Recording a block may not exceed the diagnostic sessions allowed in 12 months."""
    c = Criteria("block_session_limit")
    count = sum(1 for o in record.region_of_kind("block") if in_last_12_months(o.day, record.today))
    limit = params["max_diagnostic_sessions_per_year"]
    c.require(
        count <= limit,
        "blocks_per_year",
        f"this block would make {count} blocks in the 12 months up to "
        f"{record.today.isoformat()}; at most {limit} are allowed",
    )
    return c.verdict()


# --- ablation -----------------------------------------------------------------------------


def ablations(record: PatientRecord, *, region: bool = False) -> tuple[Event, ...]:
    return record.events_with_trigger("perform_ablation", region=region)


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
    count = 1 + sum(1 for e in ablations(record, region=True) if in_last_12_months(e.day, record.today))
    limit = params["max_ablations_per_year"]
    c.require(
        count <= limit,
        "ablations_per_year",
        f"this would be ablation {count} in the 12 months up to {record.today.isoformat()}; "
        f"at most {limit} are allowed",
    )
    _safe(record, c)
    return c.verdict()


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
    """Enough unanswered contact attempts over enough days to call the patient lost."""
    c = Criteria("contact_attempts_exhausted")
    misses = [o for o in record.of_kind("contact_attempt") if o["outcome"] == "no_response"]
    need = params["lost_min_attempts"]
    c.require(
        len(misses) >= need,
        "attempts",
        f"{len(misses)} unanswered contact attempts; at least {need} are needed",
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


GUARDS: dict[str, GuardSpec] = {
    spec.name: spec
    for spec in (
        eligibility,
        imaging_reviewed,
        two_qualifying_blocks,
        block_session_limit,
        procedure_safety,
        recovery_period,
        repeat_criteria,
        follow_up_recorded,
        contact_attempts_exhausted,
    )
}
