"""The service's maintenance jobs, built on its commands and queries: moving enrollments to
another workflow version (`migrate`) and applying the automatic transitions (`sweep`).

`Service` is the whole service layer: `pathway.Clinic` adds opening a database, the
reports and the integrations.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pathway.domain import envelopes
from pathway.domain.effects import MIGRATE
from pathway.domain.record import Enrollment, Event
from pathway.domain.timeutil import When, effective, iso, utcnow
from pathway.errors import ConcurrencyError, GuardRefused, InvalidInput, RoleRefused
from pathway.service.commands import Commands
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
