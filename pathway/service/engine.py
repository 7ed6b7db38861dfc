"""The service's maintenance jobs, built on its commands and queries: moving enrollments to
another workflow version (`migrate`), applying the automatic transitions (`sweep`) and
reopening a closed episode whose close was entered in error (`reopen`).

`Service` is the whole service layer: `pathway.Clinic` adds opening a database, the
reports and the integrations.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pathway.domain import asof, envelopes
from pathway.domain.effects import MIGRATE, after_event, position_of, reopen_payload
from pathway.domain.record import Enrollment, Event
from pathway.domain.timeutil import When, days_between, effective, iso, local_day, utcnow
from pathway.domain.verdicts import Failure, Verdict
from pathway.errors import (
    AlreadyEnrolled,
    ConcurrencyError,
    EnrollmentNotClosed,
    GuardRefused,
    InvalidInput,
    InvalidTime,
    RoleRefused,
)
from pathway.service.commands import Commands
from pathway.service.inputs import MAX_REASON, check_text
from pathway.service.results import Migrated, Transitioned


class Service(Commands):
    """Every command and query of the engine over one database (see `pathway.Clinic`)."""

    def migrate(
        self,
        pathway: str,
        to_version: int,
        *,
        states: Iterable[str] = (),
        dry_run: bool = False,
        at: When = None,
        actor: str | None = None,
        role: str | None = None,
    ) -> list[Migrated]:
        """Move open enrollments of `pathway` (optionally only those in `states`) to
        `to_version`. An enrollment whose state (or held-from state) does not exist in
        the target is refused and left as it is; each move records a `migrate` event.
        With `dry_run`, nothing is written and the result says what would happen."""
        actor, role = self._who(actor, role)
        target = self.catalog.get(pathway, to_version)
        if role not in target.roles:
            raise RoleRefused(
                f"cannot migrate {pathway} as {role}: roles are {', '.join(target.roles)}", target.roles
            )
        wanted = set(states)
        unknown = wanted - {
            s for v in self.catalog.versions(pathway) for s in self.catalog.get(pathway, v).states
        }
        if unknown:
            raise InvalidInput(f"--state: unknown state(s) {', '.join(sorted(unknown))} in {pathway}")
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.read() as tx:
            candidates = [
                e
                for e in tx.list_enrollments(pathway=pathway, open_only=True)
                if e.pathway_version != to_version and (not wanted or e.state in wanted)
            ]
        results = []
        for e in candidates:
            reason = None
            if e.state not in target.states:
                reason = f"state {e.state} does not exist in {pathway} version {to_version}"
            elif e.held_from and e.held_from not in target.states:
                reason = f"held-from state {e.held_from} does not exist in version {to_version}"
            elif when < e.last_event_at:
                reason = f"--at {iso(when)} is before the previous event ({iso(e.last_event_at)})"
            if reason is None and not dry_run:
                self._repin(e, to_version, when, recorded, actor, role)
            results.append(
                Migrated(e.patient, pathway, e.state, e.pathway_version, to_version, reason is None, reason)
            )
        return results

    def _repin(
        self, seen: Enrollment, to_version: int, when: datetime, recorded: datetime, actor: str, role: str
    ) -> None:
        """One enrollment's migration: its own transaction, refused if it changed meanwhile."""
        with self.store.write() as tx:
            enrollment = tx.enrollment(seen.id)
            if enrollment.version != seen.version:
                raise ConcurrencyError("an enrollment changed during the migration; run it again")
            seq = enrollment.last_seq + 1
            payload = {"from_version": enrollment.pathway_version, "to_version": to_version}
            event = self._chained(
                enrollment,
                Event(
                    enrollment.id,
                    seq,
                    MIGRATE,
                    enrollment.state,
                    enrollment.state,
                    actor,
                    role,
                    when,
                    recorded,
                    payload=payload,
                ),
            )
            tx.add_event(event)  # first: the database checks the enrollment follows its event
            tx.repin(
                enrollment,
                pathway_version=to_version,
                last_seq=seq,
                last_event_at=when,
                chain_head=event.hash or "",
            )
            message = envelopes.migrated(
                enrollment,
                to_version=to_version,
                seq=seq,
                effective=when,
                recorded=recorded,
                actor=actor,
                role=role,
            )
            self._emit(tx, message, recorded)

    def reopen(
        self,
        patient: str,
        *,
        reason: str,
        at: When = None,
        pathway: str | None = None,
        actor: str | None = None,
        role: str | None = None,
    ) -> Transitioned:
        """Reopen the patient's closed episode (the latest, of `pathway` when given): its
        closing event, entered in error, is voided by a reopen event and the enrollment goes
        back to the state it was in, its stay there going on from when it began. Reports,
        clocks and the worklist then read the log as if the close had never happened; the
        closing event stays in the log, marked voided (CLINICAL.md clarification 10).

        Only within the workflow's `reopen.within_days` of the close, by its `reopen.roles`,
        with a reason, and only the patient's latest episode in its region."""
        actor, role = self._who(actor, role)
        reason_text = check_text(reason, "--reason", MAX_REASON)
        if not reason_text:
            raise InvalidInput("--reason: say why the episode is reopened (what was entered in error)")
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.write() as tx:
            family = self._family(tx, patient)
            closed = [e for e in family if not e.is_open and (pathway is None or e.pathway == pathway)]
            if pathway is not None:
                self.catalog.get(pathway)
            if not closed:
                raise EnrollmentNotClosed(
                    "the patient has no closed episode"
                    + (f" in {pathway}" if pathway else "")
                    + ": only a closed episode can be reopened"
                )
            enrollment = max(closed, key=lambda e: (e.closed_at, e.id))
            workflow = self.workflow_of(enrollment)
            spec = workflow.declarations.reopen
            if spec is None:
                raise InvalidInput(f"{workflow.id} declares no reopen: its closed episodes stay closed")
            if role not in spec.roles:
                raise RoleRefused(
                    f"cannot reopen in {workflow.id} as {role}: roles are {', '.join(spec.roles)}", spec.roles
                )
            region = self._region_of(enrollment) or enrollment.pathway
            later = [
                e
                for e in family
                if e.id != enrollment.id
                and (self._region_of(e) or e.pathway) == region
                and (e.is_open or e.opened_at >= enrollment.opened_at)
            ]
            if later:
                raise AlreadyEnrolled(
                    f"the patient has a later episode in {region} ({later[-1].pathway}, opened "
                    f"{iso(later[-1].opened_at)}): episodes may not overlap, so this one stays closed"
                )
            events = tx.events_of([enrollment.id])
            closing = events[-1]
            if when < closing.effective_at:
                raise InvalidTime(
                    f"--at {iso(when)} is before the close ({iso(closing.effective_at)}); "
                    "events must be in order"
                )
            waited = days_between(closing.effective_at, when, self.zone)
            if waited > spec.within_days:
                raise GuardRefused(
                    f"cannot {spec.trigger}: the episode closed on "
                    f"{iso(local_day(closing.effective_at, self.zone))}, {waited} days ago; "
                    f"it can be reopened within {spec.within_days} days of the close",
                    spec.trigger,
                    [
                        Verdict(
                            spec.trigger,
                            (
                                Failure(
                                    "reopen_days", f"closed {waited} days ago; at most {spec.within_days}"
                                ),
                            ),
                        )
                    ],
                )
            before = asof.replay(
                enrollment, events[:-1], closing.effective_at, lambda v: self.catalog.get(workflow.id, v)
            )
            assert before is not None  # the enroll event came before the close
            event = self._chained(
                enrollment,
                Event(
                    enrollment_id=enrollment.id,
                    seq=enrollment.last_seq + 1,
                    trigger=spec.trigger,
                    from_state=enrollment.state,
                    to_state=closing.from_state or before.state,
                    actor=actor,
                    role=role,
                    effective_at=when,
                    recorded_at=recorded,
                    reason=reason_text,
                    payload=reopen_payload(position_of(before)),
                    voids=closing.seq,
                ),
            )
            tx.add_event(event)  # first: the database checks the enrollment follows its event
            position = after_event(position_of(enrollment), event, before=workflow, after=workflow)
            tx.save_state(enrollment, position, event.hash or "")
            message = envelopes.reopened(
                enrollment,
                trigger=spec.trigger,
                to_state=event.to_state,
                seq=event.seq,
                voids=closing.seq,
                reason=reason_text,
                effective=when,
                recorded=recorded,
                actor=actor,
                role=role,
            )
            self._emit(tx, message, recorded)
            return Transitioned(
                enrollment.patient,
                enrollment.pathway,
                spec.trigger,
                enrollment.state,
                event.to_state,
                when,
                event.seq,
            )

    def advance(self, patient: str, trigger: str, **options: Any) -> Transitioned:
        """`Commands.advance`; a workflow's reopen trigger (`reopen:` in its file) fired at a
        closed episode is `reopen`."""
        if self._reopens(trigger, options.get("pathway")):
            reopened = {k: options[k] for k in ("at", "pathway", "actor", "role") if k in options}
            try:
                return self.reopen(patient, reason=options.get("reason") or "", **reopened)
            except EnrollmentNotClosed:
                pass  # an open episode: the trigger is judged as any other (and refused)
        return super().advance(patient, trigger, **options)

    def _reopens(self, trigger: str, pathway: str | None) -> bool:
        workflows = (
            [self.catalog.get(pathway)] if pathway and pathway in self.catalog.ids() else self.catalog.all()
        )
        return any(
            w.declarations.reopen is not None and w.declarations.reopen.trigger == trigger for w in workflows
        )

    def sweep(
        self,
        *,
        at: When = None,
        actor: str | None = None,
        pathway: str | None = None,
        role: str | None = None,
    ) -> list[Transitioned]:
        """Apply the automatic transitions (`auto: true`, e.g. mark_lost) whose guards pass
        for open enrollments, as of `at` (default now). Idempotent: running it again finds
        nothing more to do. Each is its own transaction, recorded under `actor` (default
        "sweep") and the acting role, which must be one the transitions allow: if any that
        is due needs another role, nothing is applied and RoleRefused names it."""
        when = effective(at, utcnow(), zone=self.zone)
        if actor is not None and not actor.strip():
            raise InvalidInput("actor: empty: say who is sweeping (--actor), or leave it out for 'sweep'")
        actor, role = self._who(actor or "sweep", role)
        if pathway is not None:
            self.catalog.get(pathway)  # an unknown pathway is NotFound, not "nothing to do"
        due: list[tuple[Enrollment, str]] = []
        with self.store.read() as tx:
            candidates = tx.list_enrollments(pathway=pathway, open_only=True)
        for e in candidates:
            for t in self.workflow_of(e).transitions_from(e.state):
                if not t.auto or when < e.last_event_at:
                    continue
                (check,) = self.check(e.patient, t.trigger, at=when, pathway=e.pathway)
                if check.allowed:
                    if role not in t.roles:
                        raise RoleRefused(
                            f"cannot sweep as {role}: {t.trigger} is due for an enrollment and needs "
                            f"{' or '.join(t.roles)}; nothing was applied",
                            t.roles,
                        )
                    due.append((e, t.trigger))
                    break
        done: list[Transitioned] = []
        for e, trigger in due:
            try:
                done.append(
                    self.advance(
                        e.patient,
                        trigger,
                        at=when,
                        pathway=e.pathway,
                        actor=actor,
                        role=role,
                        expected_version=e.version,
                    )
                )
            except (ConcurrencyError, GuardRefused):
                continue  # someone else moved it meanwhile: the next sweep looks again
        return done
