"""`pathway audit verify`: is the audit trail as it was written?

For each enrollment (of one patient, or all): its hash chain is recomputed from its
events, observations and corrections (`pathway.domain.chain`) and must match every
stored hash, have no gap, end in the enrollment's stored head and be as long as its
version; its events, replayed, must give the state stored on the enrollment. Then the
database's own protections are checked (`pathway.store.protection`). Every mismatch
is a line of the report; none means the trail is intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pathway.definitions.catalog import Catalog
from pathway.domain import asof, chain
from pathway.domain.facts import Enrollment, Event, Observation
from pathway.errors import NotFound
from pathway.store import protection
from pathway.store.repository import Store
from pathway.store.tx import Tx

_LATER = datetime(9999, 1, 1, tzinfo=UTC)
_BATCH = 500


@dataclass
class AuditReport:
    enrollments: int = 0
    entries: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "enrollments": self.enrollments,
            "entries": self.entries,
            "findings": self.findings,
        }


def _entries(enrollment: Enrollment, events: list[Event], observations: list[Observation]) -> list[Any]:
    """(place, stored hash, what, chain entry) of every audit entry of the enrollment."""
    where = {"patient": enrollment.patient, "pathway": enrollment.pathway}
    found: list[Any] = []
    for e in events:
        entry = chain.of_event(enrollment.patient, enrollment.pathway, e)
        found.append((e.chain_seq, e.hash, f"event {e.seq} ({e.trigger})", entry))
    for o in observations:
        entry = chain.observation_entry(
            **where,
            chain_seq=o.chain_seq or 0,
            kind=o.kind,
            data=o.data,
            effective_at=o.effective_at,
            recorded_at=o.recorded_at,
            actor=o.actor,
            role=o.role,
        )
        found.append((o.chain_seq, o.hash, f"observation {o.id} ({o.kind})", entry))
        if o.entered_in_error or o.error_chain_seq is not None:
            correction = chain.correction_entry(
                **where,
                chain_seq=o.error_chain_seq or 0,
                observation_chain_seq=o.chain_seq,
                reason=o.error_reason or "",
                actor=o.error_actor or "",
                role=o.error_role,
                effective_at=o.error_at,
                recorded_at=o.error_recorded_at,
            )
            found.append(
                (o.error_chain_seq, o.error_hash, f"the correction of observation {o.id}", correction)
            )
    return found


def check_chain(enrollment: Enrollment, events: list[Event], observations: list[Observation]) -> list[str]:
    """Every way the enrollment's stored chain differs from the one its rows give."""
    problems = []
    entries = _entries(enrollment, events, observations)
    for place, _, what, _ in entries:
        if place is None:
            problems.append(f"{what} is not in the hash chain (written outside pathway?)")
    placed = sorted((e for e in entries if e[0] is not None), key=lambda e: e[0])
    places = [e[0] for e in placed]
    expected = list(range(1, len(placed) + 1))
    if places != expected:
        missing = sorted(set(range(1, max(places or [0]) + 1)) - set(places))
        doubled = sorted({p for p in places if places.count(p) > 1})
        if missing:
            problems.append(f"the chain has no entry at {', '.join(map(str, missing))} (a row deleted?)")
        if doubled:
            problems.append(f"the chain has two entries at {', '.join(map(str, doubled))} (a row inserted?)")
    if len(placed) != enrollment.version:
        problems.append(
            f"the enrollment is at version {enrollment.version} but its chain has {len(placed)} entries"
        )
    previous = None
    for _, stored, what, entry in placed:
        if chain.link(previous, entry) != stored:
            problems.append(f"{what} does not match its hash: changed after it was written")
        previous = stored
    if placed and enrollment.chain_head != placed[-1][1]:
        problems.append("the enrollment's chain head is not its latest entry's hash")
    return problems


def check_replay(enrollment: Enrollment, events: list[Event], catalog: Catalog) -> list[str]:
    """Whether the stored state is what its events, replayed, give."""
    ordered = sorted(events, key=lambda e: e.seq)
    if [e.seq for e in ordered] != list(range(1, len(ordered) + 1)):
        return ["its events are not numbered 1, 2, 3, ... (an event deleted or inserted?)"]
    try:
        then = asof.replay(enrollment, ordered, _LATER, lambda v: catalog.get(enrollment.pathway, v))
    except (NotFound, KeyError) as exc:
        return [
            f"its events cannot be replayed ({type(exc).__name__}: a workflow version or state is missing)"
        ]
    if then is None:
        return ["it has no events"]
    problems = []
    for name in (
        "state",
        "held_from",
        "entered_state_at",
        "closed_at",
        "last_event_at",
        "last_seq",
        "pathway_version",
    ):
        stored, replayed = getattr(enrollment, name), getattr(then, name)
        if stored != replayed:
            problems.append(f"its {name} is {stored}, but its events give {replayed}")
    return problems


def _batches(tx: Tx, rows: list[Enrollment]) -> Iterator[tuple[Enrollment, list[Event], list[Observation]]]:
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        ids = [e.id for e in batch]
        events: dict[int, list[Event]] = {}
        observations: dict[int, list[Observation]] = {}
        for event in tx.events_of(ids):
            events.setdefault(event.enrollment_id, []).append(event)
        for obs in tx.observations_of(ids):
            observations.setdefault(obs.enrollment_id, []).append(obs)
        for enrollment in batch:
            yield enrollment, events.get(enrollment.id, []), observations.get(enrollment.id, [])


def verify(store: Store, catalog: Catalog, patient: str | None = None) -> AuditReport:
    """Recompute the chains and replay the events of `patient`'s enrollments (or everyone's),
    then check the database's protections; every mismatch in `findings`."""
    report = AuditReport()
    with store.read() as tx:
        rows = tx.enrollments_of_identifier(patient) if patient is not None else tx.list_enrollments()
        if patient is not None and not rows:
            raise NotFound("no patient with that identifier")
        for enrollment, events, observations in _batches(tx, rows):
            report.enrollments += 1
            report.entries += (
                len(events) + len(observations) + sum(o.error_chain_seq is not None for o in observations)
            )
            who = f"enrollment {enrollment.id} ({enrollment.pathway}, patient {enrollment.patient})"
            for problem in [
                *check_chain(enrollment, events, observations),
                *check_replay(enrollment, events, catalog),
            ]:
                report.findings.append(f"{who}: {problem}")
    with store.write() as tx:  # the protections are tried, each in a savepoint rolled back
        report.findings += protection.findings(tx)
    return report
