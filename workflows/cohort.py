"""The simulated journey of the spine pathways (`simulation: {journey: spine-neurotomy}` in
their workflow files), registered under the `pathway.journeys` entry-point group.

All the numbers that shape the cohort live in `CohortParameters` (one documented
place); `pathway simulate` draws each patient's journey with `spine_neurotomy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pathway.service.simulate import Trip

PHYSICIAN = "physician"
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class CohortParameters:
    """Rates are probabilities per patient; waits are (median days, spread) of a log-normal."""

    decline_at_referral: float = 0.04
    wait_referred: tuple[float, float] = (10, 0.6)
    wait_evaluation: tuple[float, float] = (21, 0.5)
    imaging_rate: float = 0.35
    wait_imaging: tuple[float, float] = (28, 0.5)
    non_facet_pathology_rate: float = 0.06
    untreated_radiculopathy_rate: float = 0.06
    red_flag_rate: float = 0.02
    short_care_rate: float = 0.08  # too little conservative care
    positive_block_rate: float = 0.8
    wait_between_blocks: tuple[float, float] = (21, 0.3)
    wait_ablation: tuple[float, float] = (35, 0.5)
    anticoagulant_without_plan_rate: float = 0.05
    hold_days: tuple[float, float] = (21, 0.5)
    lost_rate: float = 0.05
    success_rate: float = 0.62  # >= 50% relief at follow-up
    repeat_rate: float = 0.3  # of successes whose pain returns after a year


def spine_neurotomy(trip: Trip) -> str:
    """Referral to discharge (or an exit on the way) for one patient of a spine pathway."""
    rng = trip.rng
    p = trip.parameters if isinstance(trip.parameters, CohortParameters) else CohortParameters()
    trip.enroll(COORDINATOR)
    trip.wait_days(*p.wait_referred)
    if rng.random() < p.decline_at_referral:
        trip.advance("decline", COORDINATOR)
        return "declined"
    trip.advance("start_evaluation", COORDINATOR)
    baseline_nrs = rng.randint(4, 9)
    trip.record(
        "baseline",
        {
            "onset_date": (trip.t - timedelta(days=rng.randint(60, 1500))).date(),
            "nrs": baseline_nrs,
            "ndi": rng.randint(10, 40),
            "axial_predominant": True,
            "radiculopathy": "untreated" if rng.random() < p.untreated_radiculopathy_rate else "none",
            "red_flags": ["fracture"] if rng.random() < p.red_flag_rate else [],
        },
        PHYSICIAN,
    )
    weeks = rng.randint(2, 5) if rng.random() < p.short_care_rate else rng.randint(6, 16)
    trip.record(
        "conservative_care",
        {"modality": rng.choice(["physiotherapy", "exercise"]), "weeks": weeks, "outcome": "failed"},
        COORDINATOR,
    )
    trip.wait_days(*p.wait_evaluation)
    if rng.random() < p.imaging_rate:
        trip.advance("order_imaging", PHYSICIAN)
        trip.wait_days(*p.wait_imaging)
        trip.record(
            "imaging",
            {"modality": "mri", "non_facet_pathology": rng.random() < p.non_facet_pathology_rate},
            PHYSICIAN,
        )
    if not trip.advance("schedule_blocks", PHYSICIAN):
        trip.advance("mark_ineligible", PHYSICIAN, reason="does not meet the criteria for blocks")
        return "ineligible"
    side = rng.choice(["left", "right", "bilateral"])
    levels = sorted(rng.sample(trip.workflow.levels[1:5], rng.choice([1, 2])))
    approved = False
    for number in range(4):
        trip.wait_days(*p.wait_between_blocks)
        positive = rng.random() < p.positive_block_rate
        agent = "lidocaine" if number % 2 == 0 else "bupivacaine"
        trip.record(
            "block",
            {
                "side": side,
                "levels": levels,
                "agent": agent,
                "guidance": "fluoroscopy",
                "sedation": "none",
                "pre_nrs": baseline_nrs,
                "post_nrs": rng.randint(0, baseline_nrs // 5) if positive else baseline_nrs - 1,
                "relief_hours": (2 if agent == "lidocaine" else 6) if positive else 0.5,
            },
            PHYSICIAN,
        )
        if number >= 1 and trip.advance("approve_ablation", PHYSICIAN):
            approved = True
            break
    if not approved:
        trip.advance("mark_ineligible", PHYSICIAN, reason="blocks did not confirm the pain source")
        return "ineligible"
    return _ablate(trip, p, baseline_nrs, side, levels, first=True)


def _procedure_day(trip: Trip, side: str, levels: list[str], *, anticoagulant: bool, plan: bool) -> None:
    """The safety check and the procedure record, on the day of the ablation."""
    trip.record(
        "safety",
        {
            "anticoagulant": anticoagulant,
            "anticoagulant_plan": plan,
            "implanted_device": "none",
            "device_plan": False,
            "pregnant": False,
            "site_infection": False,
        },
        COORDINATOR,
    )
    trip.record(
        "ablation",
        {"side": side, "levels": levels, "technique": "thermal", "guidance": "fluoroscopy"},
        PHYSICIAN,
    )


def _ablate(
    trip: Trip, p: CohortParameters, baseline_nrs: int, side: str, levels: list[str], first: bool
) -> str:
    rng = trip.rng
    trip.wait_days(*p.wait_ablation)
    blocked = rng.random() < p.anticoagulant_without_plan_rate
    _procedure_day(trip, side, levels, anticoagulant=blocked, plan=False)
    if not trip.advance("perform_ablation", PHYSICIAN):
        trip.advance("hold", PHYSICIAN, reason="anticoagulation plan needed")
        trip.wait_days(*p.hold_days)
        trip.advance("resume", PHYSICIAN)
        _procedure_day(trip, side, levels, anticoagulant=True, plan=True)
        if not trip.advance("perform_ablation", PHYSICIAN):
            return "held"
    trip.wait(timedelta(days=rng.randint(14, 24)))
    trip.advance("begin_follow_up", COORDINATOR)
    if rng.random() < p.lost_rate:
        for gap in (0, 16, 16):
            trip.wait(timedelta(days=90 if gap == 0 else gap))
            trip.record("contact_attempt", {"outcome": "no_response"}, COORDINATOR)
        trip.advance("mark_lost", COORDINATOR)
        return "lost"
    success = rng.random() < p.success_rate
    ablated = trip.t
    for month in (3, 6, 12):
        target = ablated + timedelta(days=round(month * 30.4) + rng.randint(-7, 7))
        trip.wait(max(target - trip.t, timedelta(days=1)))
        relief = rng.uniform(0.5, 0.9) if success else rng.uniform(0.0, 0.45)
        if month == 12 and success and rng.random() < p.repeat_rate:
            relief = rng.uniform(0.1, 0.4)  # the pain came back
        nrs = max(0, round(baseline_nrs * (1 - relief)))
        trip.record(
            "follow_up",
            {
                "nrs": nrs,
                "ndi": rng.randint(2, 30),
                "pgic": rng.randint(5, 7) if relief >= 0.5 else rng.randint(1, 4),
            },
            COORDINATOR,
        )
    if first and trip.advance("repeat_ablation", PHYSICIAN):
        return _ablate(trip, p, baseline_nrs, side, levels, first=False)
    trip.advance("discharge", PHYSICIAN)
    return "discharged"


JOURNEYS = {"spine-neurotomy": spine_neurotomy}
