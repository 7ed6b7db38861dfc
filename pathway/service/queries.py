"""The questions a coordinator asks of one patient or of the clinic, now or as of a time:
status, check, history, observations and list. Nothing here writes."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from pathway.domain import asof
from pathway.domain.definition import Workflow
from pathway.domain.machine import TriggerCheck
from pathway.domain.record import Enrollment, Event, Observation
from pathway.domain.timeutil import When, days_between, local_day, to_utc, utcnow
from pathway.errors import InvalidInput
from pathway.service.core import ServiceCore
from pathway.service.results import Status, Summary, audit_entries
from pathway.store.repository import Tx


class Queries(ServiceCore):
    """check, status, history, observations and list (see `pathway.Clinic`)."""

    def check(
        self,
        patient: str,
        trigger: str | None = None,
        *,
        at: When = None,
        pathway: str | None = None,
        role: str | None = None,
        reason: str | None = None,
    ) -> list[TriggerCheck]:
        """Every trigger possible now (or just `trigger`) with pass/fail and every unmet
        criterion; changes nothing. `role` marks which the role may fire. With `at`, as
        the patient stood then."""
        role = self.known_role(role)
        when = to_utc(at, zone=self.zone)
        with self.store.read() as tx:
            enrollment, family = self._resolve(
                tx, patient, pathway, for_write=False, at=None if at is None else when
            )
            if at is None:  # "now" is never before what has already happened
                when = max(when, enrollment.last_event_at)
            machine = self.machine_of(self.workflow_of(enrollment))
            record = self._record(tx, enrollment, family, when, reason=reason)
            if trigger is None:
                return machine.check(enrollment.state, enrollment.held_from, record, role)
            return [machine.check_trigger(enrollment.state, enrollment.held_from, trigger, record, role)]

    def status(self, patient: str, *, pathway: str | None = None, at: When = None) -> Status:
        """Where the patient's enrollment stands, overdue or not, and every trigger's check;
        with `at`, where it stood then (replayed from its events)."""
        when = to_utc(at, zone=self.zone)
        with self.store.read() as tx:
            enrollment, family = self._resolve(
                tx, patient, pathway, for_write=False, at=None if at is None else when
            )
            return self._status(tx, enrollment, family, when, role=None)

    def episodes(self, patient: str, *, pathway: str | None = None, role: str | None = None) -> list[Status]:
        """Every episode of the patient (of one pathway, when given), oldest first; with
        `role`, its triggers say whether that role may fire them."""
        if pathway is not None:
            self.catalog.get(pathway)
        when = utcnow()
        with self.store.read() as tx:
            family = self._family(tx, patient)
            return [
                self._status(tx, e, family, when, role=role)
                for e in family
                if pathway is None or e.pathway == pathway
            ]

    def enrollment_by_id(self, enrollment_id: int) -> Enrollment | None:
        """The enrollment with this id (its row id, as FHIR EpisodeOfCare ids give it)."""
        with self.store.read() as tx:
            return tx.enrollment_or_none(enrollment_id)

    def _status(
        self,
        tx: Tx,
        enrollment: Enrollment,
        family: list[Enrollment],
        when: datetime,
        role: str | None,
    ) -> Status:
        workflow = self.workflow_of(enrollment)
        checks: tuple[TriggerCheck, ...] = ()
        if enrollment.is_open:
            record = self._record(tx, enrollment, family, max(when, enrollment.last_event_at))
            checks = tuple(
                self.machine_of(workflow).check(enrollment.state, enrollment.held_from, record, role)
            )
        return Status(
            patient=enrollment.patient,
            name=enrollment.display_name,
            pathway=enrollment.pathway,
            version=enrollment.pathway_version,
            profile=enrollment.profile,
            enrollment_id=enrollment.id,
            enrollment_version=enrollment.version,
            state=enrollment.state,
            held_from=enrollment.held_from,
            since=enrollment.entered_state_at,
            triggers=checks,
            **self._timing(workflow, enrollment, when, self.zone),
            timezone=getattr(self.zone, "key", "UTC"),
            since_day=local_day(enrollment.entered_state_at, self.zone),
            identifier_system=enrollment.identifier_system,
            referral=enrollment.referral,
        )

    @staticmethod
    def _timing(workflow: Workflow, enrollment: Enrollment, when: datetime, zone: tzinfo) -> dict[str, Any]:
        state = workflow.state(enrollment.state)
        days = max(0, days_between(enrollment.entered_state_at, when, zone)) if enrollment.is_open else 0
        return {
            "days_in_state": days,
            "sla_days": state.sla_days,
            "overdue": bool(enrollment.is_open and state.sla_days and days > state.sla_days),
            "open": enrollment.is_open,
            "opened_at": enrollment.opened_at,
            "closed_at": enrollment.closed_at,
        }

    def history(self, patient: str, *, pathway: str | None = None, at: When = None) -> list[Event]:
        """The enrollment's events, oldest first; with `at`, of the episode that stood then,
        up to then."""
        when = None if at is None else to_utc(at, zone=self.zone)
        with self.store.read() as tx:
            enrollment, _ = self._resolve(tx, patient, pathway, for_write=False, at=when)
            found = tx.events_of([enrollment.id])
        return found if when is None else asof.events_until(found, when)

    def audit_trail(
        self, patient: str, *, pathway: str | None = None, at: When = None
    ) -> list[dict[str, Any]]:
        """Who did what and when to the enrollment (as `history`): every event, observation
        and correction in the order entered (`results.audit_entries`); with `at`, of the
        episode that stood then, up to then."""
        events = self.history(patient, pathway=pathway, at=at)
        observations = self.observations(patient, pathway=pathway, at=at)
        if at is not None:
            until = to_utc(at, zone=self.zone)
            observations = [o for o in observations if o.effective_at <= until]
        return audit_entries(events, observations)

    def observations(
        self, patient: str, *, pathway: str | None = None, kind: str | None = None, at: When = None
    ) -> list[Observation]:
        """The enrollment's observations, corrections included (marked entered-in-error);
        with `at`, of the episode that stood then, up to then, each as it stood then (a
        correction made later is not yet there)."""
        when = None if at is None else to_utc(at, zone=self.zone)
        with self.store.read() as tx:
            enrollment, _ = self._resolve(tx, patient, pathway, for_write=False, at=when)
            found = [self._decoded(o, enrollment) for o in tx.observations_of([enrollment.id])]
        if when is not None:
            found = asof.observations_until(found, when)
        return [o for o in found if kind is None or o.kind == kind]

    def list(
        self,
        *,
        pathway: str | None = None,
        state: str | None = None,
        open_only: bool = False,
        at: When = None,
    ) -> list[Summary]:
        """Enrollments, optionally of one pathway and/or in one state, longest-waiting first;
        with `at`, as they stood then (replayed from their events; later ones left out)."""
        when = to_utc(at, zone=self.zone)
        if pathway is not None:
            self.catalog.get(pathway)
        if state is not None:
            known = {s for wf in self.catalog.all() for s in wf.states}
            if state not in known:
                raise InvalidInput(f"--state: unknown state {state!r} (states: {', '.join(sorted(known))})")
        with self.store.read() as tx:
            latest = tx.latest_event_at() if at is not None else None
            if at is None or latest is None or latest <= when:  # nothing to replay: filter in SQL
                rows = tx.list_enrollments(pathway=pathway, state=state, open_only=open_only)
            else:
                rows = self._rewound(tx, tx.list_enrollments(pathway=pathway), when)
                rows = [
                    e for e in rows if (state is None or e.state == state) and (not open_only or e.is_open)
                ]
                rows.sort(key=lambda e: (e.entered_state_at, e.id))
        result = []
        for e in rows:
            timing = self._timing(self.workflow_of(e), e, when, self.zone)
            result.append(
                Summary(
                    patient=e.patient,
                    name=e.display_name,
                    pathway=e.pathway,
                    version=e.pathway_version,
                    state=e.state,
                    since=e.entered_state_at,
                    days_in_state=timing["days_in_state"],
                    sla_days=timing["sla_days"],
                    overdue=timing["overdue"],
                    open=timing["open"],
                )
            )
        return result
