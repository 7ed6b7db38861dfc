"""CLINICAL.md's guard rules, boundaries included, for both spine pathways.

Each test builds a patient record by hand (no database) and asks the guard the
shipped workflow file names, with the parameters the file and profile give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pathway.definitions.loader import load_file
from pathway.domain.definition import Workflow
from pathway.domain.guards import installed_guards
from pathway.domain.record import Enrollment, Event, Observation, PatientRecord
from pathway.domain.verdicts import Verdict

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
PATHWAYS = {
    "cervical-neurotomy": ("C4-5", "C5-6", "C6-7"),
    "lumbar-neurotomy": ("L3-4", "L4-5", "L5-S1"),
}


def day(text: str) -> date:
    return date.fromisoformat(text)


@dataclass
class Patient:
    """A hand-built record: observations and events, judged as of a day."""

    workflow: Workflow
    levels: tuple[str, ...]
    profile: str = "medicare"
    observations: list[Observation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    other_observations: list[Observation] = field(default_factory=list)
    other_events: list[Event] = field(default_factory=list)

    def add(self, kind: str, when: str, *, other: bool = False, **data: Any) -> Observation:
        obs = Observation(
            id=len(self.observations) + len(self.other_observations) + 1,
            enrollment_id=2 if other else 1,
            kind=kind,
            data=data,
            effective_at=datetime.fromisoformat(when).replace(tzinfo=UTC),
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="t",
            role="physician",
        )
        (self.other_observations if other else self.observations).append(obs)
        return obs

    def performed(self, when: str, *, other: bool = False) -> None:
        target = self.other_events if other else self.events
        target.append(
            Event(
                enrollment_id=2 if other else 1,
                seq=len(target) + 2,
                trigger="perform_ablation",
                from_state="ablation",
                to_state="recovery",
                actor="t",
                role="physician",
                effective_at=datetime.fromisoformat(when).replace(tzinfo=UTC),
                recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )

    def judge(self, guard: str, when: str, reason: str | None = None) -> Verdict:
        now = datetime.fromisoformat(when).replace(tzinfo=UTC)
        at = now
        enrollment = Enrollment(
            1,
            "P1",
            self.workflow.id,
            self.workflow.version,
            self.profile,
            "x",
            None,
            at,
            at,
            None,
            1,
            at,
            1,
        )
        record = PatientRecord.build(
            enrollment,
            now,
            self.observations,
            self.events,
            self.observations + self.other_observations,
            self.events + self.other_events,
            reason=reason,
        )
        ref = (
            next(g for t in self.workflow.transitions for g in t.guards if g.name == guard)
            if any(g.name == guard for t in self.workflow.transitions for g in t.guards)
            else next(g for k in self.workflow.kinds.values() for g in k.guards if g.name == guard)
        )
        return installed_guards().evaluate(self.workflow, ref, record)

    # the usual facts -------------------------------------------------------------------------
    def baseline(self, when: str = "2026-01-12", **changes: Any) -> None:
        data = dict(
            onset_date=day("2025-05-01"),
            nrs=7,
            ndi=22,
            axial_predominant=True,
            radiculopathy="none",
            red_flags=[],
        )
        data.update(changes)
        self.add("baseline", when, **data)

    def care(self, weeks: int, outcome: str = "failed", when: str = "2026-01-12") -> None:
        self.add("conservative_care", when, modality="physiotherapy", weeks=weeks, outcome=outcome)

    def block(self, when: str, **changes: Any) -> None:
        data = dict(
            side="right",
            levels=list(self.levels[:2]),
            agent="lidocaine",
            guidance="fluoroscopy",
            sedation="none",
            pre_nrs=7,
            post_nrs=1,
            relief_hours=2,
        )
        data.update(changes)
        self.add("block", when, **data)

    def safety(self, when: str = "2026-03-10", **changes: Any) -> None:
        data = dict(
            anticoagulant=False,
            anticoagulant_plan=False,
            implanted_device="none",
            device_plan=False,
            pregnant=False,
            site_infection=False,
        )
        data.update(changes)
        self.add("safety", when, **data)

    def ablation(self, when: str = "2026-03-10", **changes: Any) -> None:
        data = dict(side="right", levels=list(self.levels[:2]), technique="thermal", guidance="fluoroscopy")
        data.update(changes)
        self.add("ablation", when, **data)


@pytest.fixture(params=sorted(PATHWAYS))
def patient(request: pytest.FixtureRequest) -> Iterator[Patient]:
    workflow = load_file(WORKFLOWS / f"{request.param}.yaml", installed_guards())
    yield Patient(workflow, PATHWAYS[request.param])


def messages(verdict: Verdict) -> list[str]:
    return [f.message for f in verdict.failures]


def criteria(verdict: Verdict) -> set[str]:
    return {f.criterion for f in verdict.failures}


# --- eligibility ---------------------------------------------------------------------------


def eligible(p: Patient) -> Patient:
    p.baseline()
    p.care(8)
    return p


def test_a_typical_patient_is_eligible(patient: Patient) -> None:
    assert eligible(patient).judge("eligibility", "2026-01-20").passed


def test_no_baseline_fails_eligibility_naming_the_fix(patient: Patient) -> None:
    patient.care(8)
    verdict = patient.judge("eligibility", "2026-01-20")
    assert "baseline" in criteria(verdict)


@pytest.mark.parametrize("days,ok", [(89, False), (90, True)])
def test_pain_must_have_lasted_90_days(patient: Patient, days: int, ok: bool) -> None:
    now = day("2026-01-20")
    patient.baseline(onset_date=now - timedelta(days=days))
    patient.care(8)
    verdict = patient.judge("eligibility", now.isoformat())
    assert verdict.passed is ok
    if not ok:
        assert messages(verdict) == [
            f"pain duration 89 days (since {now - timedelta(days=89)}) is below the 90-day minimum"
        ]


@pytest.mark.parametrize("weeks,ok", [(5, False), (6, True)])
def test_six_weeks_of_failed_conservative_care_are_needed(patient: Patient, weeks: int, ok: bool) -> None:
    patient.baseline()
    patient.care(weeks - 2, "failed")
    patient.care(2, "not_tolerated")
    assert patient.judge("eligibility", "2026-01-20").passed is ok


def test_partial_or_successful_care_does_not_count(patient: Patient) -> None:
    patient.baseline()
    patient.care(10, "partial")
    patient.care(10, "success")
    verdict = patient.judge("eligibility", "2026-01-20")
    assert criteria(verdict) == {"conservative_care"}
    assert "totals 0 weeks" in messages(verdict)[0]


@pytest.mark.parametrize("nrs,ok", [(3, False), (4, True)])
def test_baseline_nrs_must_be_at_least_4(patient: Patient, nrs: int, ok: bool) -> None:
    patient.baseline(nrs=nrs)
    patient.care(8)
    assert patient.judge("eligibility", "2026-01-20").passed is ok


@pytest.mark.parametrize(
    "radiculopathy,ok", [("none", True), ("treated", True), ("facet_cyst", True), ("untreated", False)]
)
def test_untreated_radiculopathy_excludes(patient: Patient, radiculopathy: str, ok: bool) -> None:
    patient.baseline(radiculopathy=radiculopathy)
    patient.care(8)
    assert patient.judge("eligibility", "2026-01-20").passed is ok


def test_red_flags_and_non_axial_pain_exclude(patient: Patient) -> None:
    patient.baseline(red_flags=["fracture"], axial_predominant=False)
    patient.care(8)
    assert criteria(patient.judge("eligibility", "2026-01-20")) == {"red_flags", "axial_predominant"}


def test_non_facet_pathology_on_imaging_excludes(patient: Patient) -> None:
    eligible(patient)
    patient.add("imaging", "2026-01-15", modality="mri", non_facet_pathology=True)
    assert "non_facet_pathology" in criteria(patient.judge("eligibility", "2026-01-20"))


def test_every_eligibility_failure_is_reported_at_once(patient: Patient) -> None:
    patient.baseline(onset_date=day("2025-12-01"), nrs=2, radiculopathy="untreated")
    verdict = patient.judge("eligibility", "2026-01-20")
    assert criteria(verdict) == {"pain_duration", "baseline_nrs", "radiculopathy", "conservative_care"}


def test_the_latest_baseline_wins(patient: Patient) -> None:
    patient.baseline(nrs=2, when="2026-01-05")
    patient.baseline(nrs=6, when="2026-01-12")
    patient.care(8)
    assert patient.judge("eligibility", "2026-01-20").passed


def test_imaging_must_be_recorded_when_scheduling_from_imaging(patient: Patient) -> None:
    assert criteria(patient.judge("imaging_reviewed", "2026-01-20")) == {"imaging_recorded"}
    patient.add("imaging", "2026-01-15", modality="mri", non_facet_pathology=False)
    assert patient.judge("imaging_reviewed", "2026-01-20").passed


# --- blocks --------------------------------------------------------------------------------


def test_worked_example_one_two_positive_blocks_qualify(patient: Patient) -> None:
    patient.block("2026-01-27", agent="lidocaine", pre_nrs=7, post_nrs=1, relief_hours=2)
    patient.block("2026-02-17", agent="bupivacaine", pre_nrs=7, post_nrs=0, relief_hours=6)
    assert patient.judge("two_qualifying_blocks", "2026-02-18").passed


def test_worked_example_two_second_block_below_80_percent_refuses(patient: Patient) -> None:
    patient.block("2026-01-27", agent="lidocaine", pre_nrs=7, post_nrs=1, relief_hours=2)
    patient.block("2026-02-17", agent="bupivacaine", pre_nrs=7, post_nrs=2, relief_hours=3)
    verdict = patient.judge("two_qualifying_blocks", "2026-02-18")
    assert messages(verdict) == ["second block (2026-02-17) relief 71.4% is below the 80% threshold"]
    # a third positive block: the last two are 71.4% then 80%+, still refused
    patient.block("2026-03-03", agent="lidocaine", pre_nrs=10, post_nrs=2, relief_hours=1)
    verdict = patient.judge("two_qualifying_blocks", "2026-03-04")
    assert messages(verdict) == ["first block (2026-02-17) relief 71.4% is below the 80% threshold"]
    # a fourth positive block: the third and fourth qualify
    patient.block("2026-03-17", agent="bupivacaine", pre_nrs=10, post_nrs=1, relief_hours=4)
    assert patient.judge("two_qualifying_blocks", "2026-03-18").passed


def test_worked_example_three_blocks_on_different_sides_refuse(patient: Patient) -> None:
    patient.block("2026-01-27", side="right", pre_nrs=10, post_nrs=1)
    patient.block("2026-02-17", side="left", pre_nrs=10, post_nrs=1)
    assert criteria(patient.judge("two_qualifying_blocks", "2026-02-18")) == {"same_side"}


@pytest.mark.parametrize(
    "pre,post,ok", [(10, 2, True), (5, 1, True), (7, 2, False), (10, 3, False), (1, 0, True), (9, 2, False)]
)
def test_relief_of_exactly_80_percent_is_positive(patient: Patient, pre: int, post: int, ok: bool) -> None:
    patient.block("2026-01-27", pre_nrs=10, post_nrs=0)
    patient.block("2026-02-17", pre_nrs=pre, post_nrs=post, agent="lidocaine")
    assert patient.judge("two_qualifying_blocks", "2026-02-18").passed is ok


def test_relief_just_below_80_is_never_shown_as_80(patient: Patient) -> None:
    patient.block("2026-01-27", pre_nrs=10, post_nrs=0)
    patient.block("2026-02-17", pre_nrs=9, post_nrs=2)  # 77.7...%
    assert "relief 77.7% is below" in messages(patient.judge("two_qualifying_blocks", "2026-02-18"))[0]


@pytest.mark.parametrize(
    "agent,hours,ok",
    [
        ("lidocaine", 1, True),
        ("lidocaine", 0.9, False),
        ("bupivacaine", 2, True),
        ("bupivacaine", 1.5, False),
    ],
)
def test_relief_must_last_as_long_as_the_agent(patient: Patient, agent: str, hours: float, ok: bool) -> None:
    patient.block("2026-01-27", agent=agent, relief_hours=hours)
    patient.block("2026-02-17", agent=agent, relief_hours=hours)
    assert patient.judge("two_qualifying_blocks", "2026-02-18").passed is ok


@pytest.mark.parametrize("gap,ok", [(13, False), (14, True)])
def test_blocks_must_be_14_days_apart(patient: Patient, gap: int, ok: bool) -> None:
    first = day("2026-01-27")
    patient.block(first.isoformat())
    patient.block((first + timedelta(days=gap)).isoformat())
    verdict = patient.judge("two_qualifying_blocks", "2026-03-01")
    assert verdict.passed is ok
    if not ok:
        assert messages(verdict) == ["the blocks were 13 days apart; at least 14 are needed"]


def test_an_invalid_block_between_two_positive_ones_breaks_the_pair(patient: Patient) -> None:
    patient.block("2026-01-06")
    patient.block("2026-01-27", sedation="moderate")
    patient.block("2026-02-17")
    verdict = patient.judge("two_qualifying_blocks", "2026-02-18")
    assert criteria(verdict) == {"first_block_sedation"}


def test_pre_block_nrs_of_zero_makes_a_block_invalid(patient: Patient) -> None:
    patient.block("2026-01-27")
    patient.block("2026-02-17", pre_nrs=0, post_nrs=0)
    assert "second_block_pre_nrs" in criteria(patient.judge("two_qualifying_blocks", "2026-02-18"))


def test_ultrasound_guidance_is_valid_only_under_the_consensus_profile(patient: Patient) -> None:
    patient.block("2026-01-27", guidance="ultrasound")
    patient.block("2026-02-17", guidance="ultrasound")
    assert not patient.judge("two_qualifying_blocks", "2026-02-18").passed
    patient.profile = "consensus"
    assert patient.judge("two_qualifying_blocks", "2026-02-18").passed


def test_blocks_at_different_levels_do_not_pair(patient: Patient) -> None:
    patient.block("2026-01-27", levels=list(patient.levels[:2]))
    patient.block("2026-02-17", levels=list(patient.levels[1:3]))
    assert criteria(patient.judge("two_qualifying_blocks", "2026-02-18")) == {"same_levels"}


def test_level_order_does_not_matter(patient: Patient) -> None:
    patient.block("2026-01-27", levels=list(patient.levels[:2]))
    patient.block("2026-02-17", levels=list(reversed(patient.levels[:2])))
    assert patient.judge("two_qualifying_blocks", "2026-02-18").passed


@pytest.mark.parametrize("lido_hours,bupi_hours,ok", [(2, 6, True), (3, 3, False), (6, 2.5, False)])
def test_comparative_blocks_must_be_concordant(
    patient: Patient, lido_hours: float, bupi_hours: float, ok: bool
) -> None:
    patient.block("2026-01-27", agent="bupivacaine", relief_hours=bupi_hours)
    patient.block("2026-02-17", agent="lidocaine", relief_hours=lido_hours)
    verdict = patient.judge("two_qualifying_blocks", "2026-02-18")
    assert verdict.passed is ok
    if not ok:
        assert "concordant_response" in criteria(verdict)


def test_fewer_than_two_blocks_say_how_many(patient: Patient) -> None:
    patient.block("2026-01-27")
    assert messages(patient.judge("two_qualifying_blocks", "2026-02-18")) == [
        "two diagnostic blocks are needed; 1 recorded"
    ]


def test_a_block_dated_after_now_is_not_counted(patient: Patient) -> None:
    patient.block("2026-01-27")
    patient.block("2026-02-17")
    assert not patient.judge("two_qualifying_blocks", "2026-02-16").passed


@pytest.mark.parametrize("count,ok", [(4, True), (5, False)])
def test_at_most_four_blocks_in_12_months_counting_other_episodes(
    patient: Patient, count: int, ok: bool
) -> None:
    patient.block("2025-05-01", other=True)  # another episode, same region, exactly a year before
    for i in range(count - 1):
        patient.block((day("2026-01-05") + timedelta(days=14 * i)).isoformat())
    verdict = patient.judge("block_session_limit", "2026-05-01")
    assert verdict.passed is ok


def test_a_block_a_year_and_a_day_ago_does_not_count(patient: Patient) -> None:
    patient.block("2025-04-30")
    for i in range(4):
        patient.block((day("2026-01-05") + timedelta(days=14 * i)).isoformat())
    assert patient.judge("block_session_limit", "2026-05-01").passed


def test_the_12_month_window_maps_29_february_to_28_february(patient: Patient) -> None:
    # up to 2028-02-29 the window starts 2027-02-28 (inclusive)
    patient.block("2027-02-27")  # outside
    patient.block("2027-02-28")  # inside: the first day of the window
    for i in range(4):
        patient.block((day("2028-01-01") + timedelta(days=14 * i)).isoformat())
    verdict = patient.judge("block_session_limit", "2028-02-29")
    assert not verdict.passed and "5 blocks" in messages(verdict)[0]


# --- the procedure -------------------------------------------------------------------------


def ready(p: Patient) -> Patient:
    p.block("2026-01-27")
    p.block("2026-02-17", agent="bupivacaine", relief_hours=6)
    p.safety()
    p.ablation()
    return p


def test_a_covered_thermal_procedure_with_a_clear_safety_check_passes(patient: Patient) -> None:
    assert ready(patient).judge("procedure_safety", "2026-03-10").passed


def test_the_procedure_must_be_recorded_on_the_day(patient: Patient) -> None:
    ready(patient)
    assert criteria(patient.judge("procedure_safety", "2026-03-11")) == {"ablation_recorded"}


@pytest.mark.parametrize(
    "technique,profile,ok",
    [
        ("thermal", "medicare", True),
        ("cooled", "medicare", False),
        ("cooled", "consensus", True),
        ("pulsed", "consensus", False),
    ],
)
def test_technique_depends_on_the_profile(patient: Patient, technique: str, profile: str, ok: bool) -> None:
    patient.profile = profile
    patient.block("2026-01-27")
    patient.block("2026-02-17")
    patient.safety()
    patient.ablation(technique=technique)
    assert patient.judge("procedure_safety", "2026-03-10").passed is ok


def test_ultrasound_guided_ablation_is_refused(patient: Patient) -> None:
    patient.block("2026-01-27")
    patient.block("2026-02-17")
    patient.safety()
    patient.ablation(guidance="ultrasound")
    assert criteria(patient.judge("procedure_safety", "2026-03-10")) == {"guidance"}


def test_three_levels_in_one_session_are_refused(patient: Patient) -> None:
    levels = list(patient.levels)
    patient.block("2026-01-27", levels=levels)
    patient.block("2026-02-17", levels=levels)
    patient.safety()
    patient.ablation(levels=levels)
    assert criteria(patient.judge("procedure_safety", "2026-03-10")) == {"levels_per_session"}


def test_a_bilateral_level_counts_once_and_bilateral_blocks_cover_either_side(patient: Patient) -> None:
    patient.block("2026-01-27", side="bilateral")
    patient.block("2026-02-17", side="bilateral")
    patient.safety()
    patient.ablation(side="bilateral")
    assert patient.judge("procedure_safety", "2026-03-10").passed


def test_the_ablation_must_be_on_the_blocked_side_and_levels(patient: Patient) -> None:
    patient.block("2026-01-27", levels=[patient.levels[0]])
    patient.block("2026-02-17", levels=[patient.levels[0]])
    patient.safety()
    patient.ablation(side="left", levels=list(patient.levels[:2]))
    assert criteria(patient.judge("procedure_safety", "2026-03-10")) == {"covered_side", "covered_levels"}


@pytest.mark.parametrize("last_other,ok", [("2025-03-10", False), ("2025-03-09", True)])
def test_at_most_two_ablations_in_12_months_across_episodes(
    patient: Patient, last_other: str, ok: bool
) -> None:
    patient.performed(last_other, other=True)
    patient.performed("2025-09-01", other=True)
    ready(patient)
    verdict = patient.judge("procedure_safety", "2026-03-10")
    assert verdict.passed is ok
    if not ok:
        assert criteria(verdict) == {"ablations_per_year"}
        (failure,) = verdict.failures  # clarification 5: the first date it would be allowed
        assert failure.not_before == day("2026-03-11")
        assert "the first date it is allowed is 2026-03-11" in failure.message


def test_a_missing_safety_check_fails(patient: Patient) -> None:
    patient.block("2026-01-27")
    patient.block("2026-02-17")
    patient.ablation()
    assert criteria(patient.judge("procedure_safety", "2026-03-10")) == {"safety_recorded"}


@pytest.mark.parametrize(
    "changes,failed",
    [
        ({"anticoagulant": True}, {"anticoagulant_plan"}),
        ({"anticoagulant": True, "anticoagulant_plan": True}, set()),
        ({"implanted_device": "pacemaker"}, {"device_plan"}),
        ({"implanted_device": "pacemaker", "device_plan": True}, set()),
        ({"pregnant": True}, {"pregnant"}),
        ({"site_infection": True}, {"site_infection"}),
        (
            {"pregnant": True, "site_infection": True, "anticoagulant": True},
            {"pregnant", "site_infection", "anticoagulant_plan"},
        ),
    ],
)
def test_each_safety_item(patient: Patient, changes: dict[str, Any], failed: set[str]) -> None:
    patient.block("2026-01-27")
    patient.block("2026-02-17")
    patient.safety(**changes)
    patient.ablation()
    assert criteria(patient.judge("procedure_safety", "2026-03-10")) == failed


def test_the_latest_safety_check_wins(patient: Patient) -> None:
    ready(patient)
    patient.safety(when="2026-03-10T08:00", pregnant=True)
    assert criteria(patient.judge("procedure_safety", "2026-03-10T09:00")) == {"pregnant"}


# --- after the procedure -------------------------------------------------------------------


@pytest.mark.parametrize("days,ok", [(13, False), (14, True)])
def test_follow_up_begins_14_days_after_the_ablation(patient: Patient, days: int, ok: bool) -> None:
    patient.performed("2026-03-10")
    when = day("2026-03-10") + timedelta(days=days)
    assert patient.judge("recovery_period", when.isoformat()).passed is ok


def test_discharge_needs_a_follow_up_after_the_ablation(patient: Patient) -> None:
    patient.performed("2026-03-10")
    patient.add("follow_up", "2026-03-10", nrs=3, ndi=10, pgic=6)  # the same day does not count
    assert criteria(patient.judge("follow_up_recorded", "2026-06-10")) == {"follow_up"}
    patient.add("follow_up", "2026-06-10", nrs=3, ndi=10, pgic=6)
    assert patient.judge("follow_up_recorded", "2026-06-10").passed


def repeat_case(p: Patient, *follow_ups: tuple[str, int]) -> Patient:
    p.baseline(when="2026-01-12", nrs=8)
    p.performed("2026-03-10")
    for when, nrs in follow_ups:
        p.add("follow_up", when, nrs=nrs, ndi=10, pgic=6)
    return p


@pytest.mark.parametrize("last,ok", [("2026-09-07", False), ("2026-09-08", True)])
def test_repeat_needs_182_days_of_half_relief(patient: Patient, last: str, ok: bool) -> None:
    # 2026-03-10 + 182 days = 2026-09-08
    repeat_case(patient, ("2026-06-10", 3), (last, 4))
    gap = (day(last) - day("2026-03-10")).days
    verdict = patient.judge("repeat_criteria", "2026-10-01")
    assert verdict.passed is (gap >= 182) and verdict.passed is ok


def test_relief_that_falls_below_half_ends_the_duration(patient: Patient) -> None:
    repeat_case(patient, ("2026-06-10", 5), ("2026-10-10", 2))  # 37.5% at 92 days
    verdict = patient.judge("repeat_criteria", "2026-11-01")
    assert criteria(verdict) == {"relief_duration"}
    assert "lasted 92 days" in messages(verdict)[0]


def test_repeat_needs_a_follow_up(patient: Patient) -> None:
    repeat_case(patient)
    assert criteria(patient.judge("repeat_criteria", "2026-10-01")) == {"follow_up"}


@pytest.mark.parametrize("now,ok", [("2028-03-10", True), ("2028-03-11", False)])
def test_an_ablation_over_24_months_old_needs_rediagnosis(patient: Patient, now: str, ok: bool) -> None:
    repeat_case(patient, ("2026-12-01", 2))
    verdict = patient.judge("repeat_criteria", now)
    assert verdict.passed is ok
    if not ok:
        assert "rediagnose" in messages(verdict)[0]


def test_relief_is_measured_from_the_baseline_before_the_ablation(patient: Patient) -> None:
    repeat_case(patient, ("2026-10-01", 4))  # 50% of the baseline 8
    patient.baseline(when="2026-09-01", nrs=4)  # after the ablation: not the reference
    assert patient.judge("repeat_criteria", "2026-10-02").passed


@pytest.mark.parametrize("attempts,span,ok", [(2, 40, False), (3, 29, False), (3, 30, True)])
def test_lost_to_follow_up_needs_three_unanswered_attempts_30_days_apart(
    patient: Patient, attempts: int, span: int, ok: bool
) -> None:
    first = day("2026-05-01")
    for i in range(attempts):
        when = first + timedelta(days=span if i == attempts - 1 else i)
        patient.add("contact_attempt", when.isoformat(), outcome="no_response")
    patient.add("contact_attempt", "2026-04-20", outcome="reached")  # before them: it resets nothing
    assert patient.judge("contact_attempts_exhausted", "2026-07-01").passed is ok


def test_reached_attempts_do_not_count(patient: Patient) -> None:
    for when in ("2026-05-01", "2026-05-20", "2026-06-10"):
        patient.add("contact_attempt", when, outcome="reached")
    assert criteria(patient.judge("contact_attempts_exhausted", "2026-07-01")) == {"attempts"}


def test_a_record_as_of_a_time_holds_no_event_after_it() -> None:
    """Asked about 10:00 (a check as of the past), a guard must not see the 15:00 event of
    the same day: an ablation at 15:00 would count against itself in the yearly limit."""
    workflow = load_file(WORKFLOWS / "cervical-neurotomy.yaml", installed_guards())
    p = Patient(workflow, workflow.levels)
    p.performed("2026-03-09T09:00:00")
    p.performed("2026-03-09T15:00:00", other=True)
    p.performed("2026-03-09T15:00:00")
    now = datetime(2026, 3, 9, 10, tzinfo=UTC)
    enrollment = Enrollment(
        1, "P1", workflow.id, workflow.version, "medicare", "x", None, now, now, None, 1, now, 1
    )
    record = PatientRecord.build(enrollment, now, [], p.events, [], p.events + p.other_events)
    assert [e.effective_at.hour for e in record.events] == [9]
    assert [e.effective_at.hour for e in record.region_events] == [9]
