"""A synthetic cohort, made through the engine's own API so every guard is honoured.

The engine draws arrivals, keeps time and writes in batches; what happens to each
patient is the pathway's *journey*: a function registered by an installed package
under the `pathway.journeys` entry-point group and named by the workflow file
(`simulation: {journey: NAME}`). The shipped spine journey is
`pathway_workflows.cohort`. Each journey is drawn from a random generator seeded
per patient, so a seed always gives the same cohort. A journey stops at `until`
(default today): later steps have not happened yet, and those patients stay open,
as real ones would.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from pathway.domain.definition import Workflow
from pathway.domain.timeutil import not_in_future, utcnow
from pathway.errors import DefinitionError, InvalidInput, NotFound, Refused

if TYPE_CHECKING:
    from pathway.service.engine import Service

JOURNEYS_ENTRY_POINT_GROUP = "pathway.journeys"

#: A journey: walks one patient (a `Trip`) and returns how the journey ended.
Journey = Callable[["Trip"], str]


class Stop(Exception):
    """The journey reached `until`: the patient stays where they are."""


@dataclass
class Trip:
    """One simulated patient: what a journey may do, at the trip's current time `t`."""

    clinic: Service
    patient: str
    workflow: Workflow
    rng: random.Random
    t: datetime
    until: datetime
    parameters: Any = None  # the journey's own settings, if the caller gives any

    def wait(self, delta: timedelta) -> datetime:
        """Move time on by `delta`; past `until`, the journey stops (Stop)."""
        self.t += delta
        if self.t > self.until:
            raise Stop
        return self.t

    def wait_days(self, median: float, spread: float) -> datetime:
        """Wait a log-normal number of days (at least one) around `median`."""
        return self.wait(timedelta(days=max(1, round(self.rng.lognormvariate(0, spread) * median))))

    def enroll(self, role: str) -> None:
        self.clinic.enroll(self.patient, self.workflow.id, at=self.t, role=role)

    def advance(self, trigger: str, role: str, reason: str | None = None) -> bool:
        """Fire `trigger` now; False when a guard or role refuses it."""
        try:
            self.clinic.advance(
                self.patient, trigger, at=self.t, role=role, reason=reason, pathway=self.workflow.id
            )
            return True
        except Refused:
            return False

    def record(self, kind: str, values: Mapping[str, Any], role: str) -> None:
        self.clinic.record(self.patient, kind, values, at=self.t, role=role, pathway=self.workflow.id)


@cache
def installed_journeys() -> Mapping[str, Journey]:
    """Every journey contributed by an installed package, by name."""
    from pathway.domain.plugins import entry_points_of

    found: dict[str, Journey] = {}
    for ep in entry_points_of(JOURNEYS_ENTRY_POINT_GROUP):
        loaded = ep.load()
        items = loaded.items() if isinstance(loaded, Mapping) else [(ep.name, loaded)]
        for name, journey in items:
            if name in found and found[name] is not journey:
                raise DefinitionError(
                    f"entry point {JOURNEYS_ENTRY_POINT_GROUP}:{ep.name}",
                    [f"journey {name!r} is defined twice"],
                )
            found[str(name)] = journey
    return found


def journey_of(workflow: Workflow) -> Journey:
    declared = workflow.declarations.simulation
    if declared is None:
        raise InvalidInput(
            f"{workflow.id} cannot be simulated: its workflow file names no journey "
            "(simulation: {journey: ...})"
        )
    journeys = installed_journeys()
    if declared.journey not in journeys:
        known = ", ".join(sorted(journeys)) or "none installed"
        raise NotFound(
            f"{workflow.id} names journey {declared.journey!r}, which is not installed (known: {known})"
        )
    return journeys[declared.journey]


def _refuse_a_second_cohort(clinic: Service, first: str, seed: int) -> None:
    try:
        clinic.status(first)
    except NotFound:
        return
    raise InvalidInput(
        f"this database already holds the cohort of seed {seed} ({first}, ...): "
        "choose another seed, or another database"
    )


#: Referrals arrive over this many days up to `until` when no start is given.
ARRIVAL_SPAN_DAYS = 730


def simulate(
    clinic: Service,
    patients: int,
    *,
    seed: int = 1,
    start: date | None = None,
    until: date | None = None,
    pathway: str | None = None,
    parameters: Any = None,
    batch: int = 500,
    staged: bool = True,
    prefix: str = "SIM",
    progress: Callable[[int], None] | None = None,
    referrals_until: date | None = None,
) -> Counter[str]:
    """Create `patients` synthetic journeys in `pathway` (default: the default pathway);
    return how many ended where (or are still open).

    Referrals arrive evenly between `start` (default: two years before `until`) and
    `until`, so every patient asked for is made. With `referrals_until` later than
    `until`, they arrive up to that date instead and those after `until` are not made:
    the same cohort, seen as it stood at `until` (arrival and journey depend only on the
    seed, the patient's number, `start` and `referrals_until`). `parameters` go to the
    journey as `Trip.parameters`.

    `batch` patients at a time run in a staged batch (`Clinic.batch(staged=True)`): the
    commands are the ordinary ones, kept in memory and written together; `staged=False`
    runs them against the database one by one, each committed on its own as a
    coordinator's would be (same result, several times slower; a kill loses only the
    command under way)."""
    workflow = clinic.catalog.get(pathway) if pathway is not None else clinic.catalog.default()
    journey = journey_of(workflow)
    until_at = datetime.combine(until or datetime.now(UTC).date(), datetime.min.time(), UTC)
    not_in_future(until_at, utcnow(), name="--until", date_only=True)  # journeys have happened
    first = start or (until_at.date() - timedelta(days=ARRIVAL_SPAN_DAYS))
    span = ((referrals_until or until_at.date()) - first).days  # arrival days: first + 0..span-1
    if span < 1:
        raise InvalidInput(
            f"--start {first.isoformat()} must be before --until {until_at.date().isoformat()}"
        )
    outcomes: Counter[str] = Counter()
    _refuse_a_second_cohort(clinic, f"{prefix}{seed}-{0:06d}", seed)
    for offset in range(0, patients, batch):
        with clinic.batch(staged=True) if staged else nullcontext():
            for i in range(offset, min(offset + batch, patients)):
                rng = random.Random(f"{seed}:{i}")
                arrival = datetime.combine(first, datetime.min.time(), UTC) + timedelta(
                    days=rng.randint(0, span - 1), hours=rng.randint(8, 17)
                )
                if arrival > until_at:
                    continue
                trip = Trip(clinic, f"{prefix}{seed}-{i:06d}", workflow, rng, arrival, until_at, parameters)
                try:
                    outcomes[journey(trip)] += 1
                except Stop:
                    outcomes["open"] += 1
        if progress is not None:
            progress(min(batch, patients - offset))
    return outcomes
