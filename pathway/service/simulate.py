"""A synthetic cohort, made through the engine's own API so every guard is honoured.

All the numbers that shape the cohort live in `CohortParameters` (one
documented place). Each patient's journey is drawn from a random generator
seeded per patient, so a seed always gives the same cohort. A journey stops at
`until` (default today): later steps have not happened yet, and those patients
stay open, as real ones would.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pathway.clinic import Clinic
from pathway.domain.timeutil import not_in_future, utcnow
from pathway.errors import InvalidInput, NotFound, Refused

PHYSICIAN = "physician"
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class CohortParameters:
    """Rates are probabilities per patient; waits are (median days, spread) of a log-normal."""

    arrival_span_days: int = 730  # referrals arrive over the two years up to `until`
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


def _wait(rng: random.Random, spec: tuple[float, float]) -> timedelta:
    median, spread = spec
    return timedelta(days=max(1, round(rng.lognormvariate(0, spread) * median)))


class _Stop(Exception):
    """The journey reached `until`."""


class _Journey:
    def __init__(
        self,
        clinic: Clinic,
        patient: str,
        pathway: str,
        levels: tuple[str, ...],
        rng: random.Random,
        p: CohortParameters,
        start: datetime,
        until: datetime,
    ) -> None:
        self.clinic, self.patient, self.pathway = clinic, patient, pathway
        self.levels, self.rng, self.p, self.t, self.until = levels, rng, p, start, until

    def after(self, delta: timedelta) -> datetime:
        self.t += delta
        if self.t > self.until:
            raise _Stop
        return self.t

    def advance(self, trigger: str, role: str = PHYSICIAN, reason: str | None = None) -> bool:
        try:
            self.clinic.advance(
                self.patient, trigger, at=self.t, role=role, reason=reason, pathway=self.pathway
            )
            return True
        except Refused:
            return False

    def record(self, kind: str, values: dict[str, Any], role: str = PHYSICIAN) -> None:
        self.clinic.record(self.patient, kind, values, at=self.t, role=role, pathway=self.pathway)

    def run(self) -> str:
        rng, p = self.rng, self.p
        self.clinic.enroll(self.patient, self.pathway, at=self.t, role=COORDINATOR)
        self.after(_wait(rng, p.wait_referred))
        if rng.random() < p.decline_at_referral:
            self.advance("decline", COORDINATOR)
            return "declined"
        self.advance("start_evaluation", COORDINATOR)
        baseline_nrs = rng.randint(4, 9)
        self.record(
            "baseline",
            {
                "onset_date": (self.t - timedelta(days=rng.randint(60, 1500))).date(),
                "nrs": baseline_nrs,
                "ndi": rng.randint(10, 40),
                "axial_predominant": True,
                "radiculopathy": "untreated" if rng.random() < p.untreated_radiculopathy_rate else "none",
                "red_flags": ["fracture"] if rng.random() < p.red_flag_rate else [],
            },
        )
        weeks = rng.randint(2, 5) if rng.random() < p.short_care_rate else rng.randint(6, 16)
        self.record(
            "conservative_care",
            {"modality": rng.choice(["physiotherapy", "exercise"]), "weeks": weeks, "outcome": "failed"},
            COORDINATOR,
        )
        self.after(_wait(rng, p.wait_evaluation))
        if rng.random() < p.imaging_rate:
            self.advance("order_imaging")
            self.after(_wait(rng, p.wait_imaging))
            self.record(
                "imaging",
                {"modality": "mri", "non_facet_pathology": rng.random() < p.non_facet_pathology_rate},
            )
        if not self.advance("schedule_blocks"):
            self.advance("mark_ineligible", reason="does not meet the criteria for blocks")
            return "ineligible"
        side = rng.choice(["left", "right", "bilateral"])
        levels = sorted(rng.sample(self.levels[1:5], rng.choice([1, 2])))
        approved = False
        for number in range(4):
            self.after(_wait(rng, p.wait_between_blocks))
            positive = rng.random() < p.positive_block_rate
            agent = "lidocaine" if number % 2 == 0 else "bupivacaine"
            self.record(
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
            )
            if number >= 1 and self.advance("approve_ablation"):
                approved = True
                break
        if not approved:
            self.advance("mark_ineligible", reason="blocks did not confirm the pain source")
            return "ineligible"
        return self.ablate(baseline_nrs, side, levels, first=True)

    def procedure_day(self, side: str, levels: list[str], *, anticoagulant: bool, plan: bool) -> None:
        """The safety check and the procedure record, on the day of the ablation."""
        self.record(
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
        self.record(
            "ablation", {"side": side, "levels": levels, "technique": "thermal", "guidance": "fluoroscopy"}
        )

    def ablate(self, baseline_nrs: int, side: str, levels: list[str], first: bool) -> str:
        rng, p = self.rng, self.p
        self.after(_wait(rng, p.wait_ablation))
        blocked = rng.random() < p.anticoagulant_without_plan_rate
        self.procedure_day(side, levels, anticoagulant=blocked, plan=False)
        if not self.advance("perform_ablation"):
            self.advance("hold", reason="anticoagulation plan needed")
            self.after(_wait(rng, p.hold_days))
            self.advance("resume")
            self.procedure_day(side, levels, anticoagulant=True, plan=True)
            if not self.advance("perform_ablation"):
                return "held"
        self.after(timedelta(days=rng.randint(14, 24)))
        self.advance("begin_follow_up", COORDINATOR)
        if rng.random() < p.lost_rate:
            for gap in (0, 16, 16):
                self.after(timedelta(days=90 if gap == 0 else gap))
                self.record("contact_attempt", {"outcome": "no_response"}, COORDINATOR)
            self.advance("mark_lost", COORDINATOR)
            return "lost"
        success = rng.random() < p.success_rate
        ablated = self.t
        for month in (3, 6, 12):
            target = ablated + timedelta(days=round(month * 30.4) + rng.randint(-7, 7))
            self.after(max(target - self.t, timedelta(days=1)))
            relief = rng.uniform(0.5, 0.9) if success else rng.uniform(0.0, 0.45)
            if month == 12 and success and rng.random() < p.repeat_rate:
                relief = rng.uniform(0.1, 0.4)  # the pain came back
            nrs = max(0, round(baseline_nrs * (1 - relief)))
            self.record(
                "follow_up",
                {
                    "nrs": nrs,
                    "ndi": rng.randint(2, 30),
                    "pgic": rng.randint(5, 7) if relief >= 0.5 else rng.randint(1, 4),
                },
                COORDINATOR,
            )
        if first and self.advance("repeat_ablation"):
            return self.ablate(baseline_nrs, side, levels, first=False)
        self.advance("discharge")
        return "discharged"


def _refuse_a_second_cohort(clinic: Clinic, first: str, seed: int) -> None:
    try:
        clinic.status(first)
    except NotFound:
        return
    raise InvalidInput(
        f"this database already holds the cohort of seed {seed} ({first}, ...): "
        "choose another seed, or another database"
    )


def simulate(
    clinic: Clinic,
    patients: int,
    *,
    seed: int = 1,
    start: date | None = None,
    until: date | None = None,
    pathway: str = "cervical-neurotomy",
    parameters: CohortParameters | None = None,
    batch: int = 500,
    staged: bool = True,
    prefix: str = "SIM",
    progress: Callable[[int], None] | None = None,
    referrals_until: date | None = None,
) -> Counter[str]:
    """Create `patients` synthetic journeys; return how many ended where (or are still open).

    Referrals arrive evenly between `start` (default: `arrival_span_days` before `until`)
    and `until`, so every patient asked for is made. With `referrals_until` later than
    `until`, they arrive up to that date instead and those after `until` are not made:
    the same cohort, seen as it stood at `until` (arrival and journey depend only on the
    seed, the patient's number, `start` and `referrals_until`).

    `batch` patients at a time run in a staged batch (`Clinic.batch(staged=True)`): the
    commands are the ordinary ones, kept in memory and written together; `staged=False`
    runs them against the database one by one (same result, several times slower)."""
    p = parameters or CohortParameters()
    workflow = clinic.catalog.get(pathway)
    until_at = datetime.combine(until or datetime.now(UTC).date(), datetime.min.time(), UTC)
    not_in_future(until_at, utcnow(), name="--until", date_only=True)  # journeys have happened
    first = start or (until_at.date() - timedelta(days=p.arrival_span_days))
    span = ((referrals_until or until_at.date()) - first).days  # arrival days: first + 0..span-1
    if span < 1:
        raise InvalidInput(
            f"--start {first.isoformat()} must be before --until {until_at.date().isoformat()}"
        )
    outcomes: Counter[str] = Counter()
    _refuse_a_second_cohort(clinic, f"{prefix}{seed}-{0:06d}", seed)
    for offset in range(0, patients, batch):
        with clinic.batch(staged=staged):
            for i in range(offset, min(offset + batch, patients)):
                rng = random.Random(f"{seed}:{i}")
                arrival = datetime.combine(first, datetime.min.time(), UTC) + timedelta(
                    days=rng.randint(0, span - 1), hours=rng.randint(8, 17)
                )
                if arrival > until_at:
                    continue
                journey = _Journey(
                    clinic, f"{prefix}{seed}-{i:06d}", pathway, workflow.levels, rng, p, arrival, until_at
                )
                try:
                    outcomes[journey.run()] += 1
                except _Stop:
                    outcomes["open"] += 1
        if progress is not None:
            progress(min(batch, patients - offset))
    return outcomes
