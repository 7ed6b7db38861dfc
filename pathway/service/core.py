"""What every command and query of the service shares: the database and the catalog, who
is acting, which enrollment a command means, and the record its guards read.

`ServiceCore` is the base of the service's parts (`commands`, `queries`, `engine`);
`pathway.Clinic` is all of them together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any

from pathway.definitions.catalog import Catalog
from pathway.domain import asof, fields
from pathway.domain.definition import Workflow
from pathway.domain.effects import live
from pathway.domain.machine import PathwayMachine, machine_for
from pathway.domain.record import Enrollment, Event, Observation, PatientRecord
from pathway.domain.timeutil import iso
from pathway.errors import AmbiguousEnrollment, EnrollmentClosed, InvalidInput, NotFound
from pathway.service.inputs import MAX_NAME, check_patient_id, check_text, default_actor
from pathway.store.repository import Store, Tx
from pathway.store.unit_of_work import UnitOfWork

logger = logging.getLogger("pathway")


class ServiceCore:
    """A clinic's pathway engine over one database: the shared part."""

    def __init__(
        self, store: Store, catalog: Catalog, *, actor: str | None = None, role: str = "coordinator"
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.actor = default_actor() if actor is None else actor
        self.role = role
        self._known_roles: tuple[str, ...] | None = None
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        store.after_commit.append(self._publish)

    # integration ------------------------------------------------------------------
    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call `callback(message)` with each outbox message after its change commits
        (in-process; a failing subscriber is logged and does not undo the change).
        Returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:  # calling it again does nothing
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            for callback in list(self._subscribers):
                try:
                    callback(message)
                except Exception:
                    logger.exception("outbox subscriber %r failed on message %s", callback, message.get("id"))

    def batch(self, *, staged: bool = False) -> Any:
        """`with clinic.batch():` runs the commands inside in one transaction (each still
        validated, a refused one undone alone): much faster for bulk work.

        `staged=True` goes further for a cohort of patients new to the database (as
        `simulate` makes): enroll, record and advance run against memory, with every
        check as always, and the rows are written together when the block ends. Other
        commands, and patients already in the database, are refused inside it."""
        return self.store.staged() if staged else self.store.batch()

    @property
    def zone(self) -> tzinfo:
        """The clinic's time zone: every calendar-date rule uses it (`pathway db set timezone`)."""
        return self.store.zone

    @staticmethod
    def _emit(tx: UnitOfWork, message: dict[str, Any], at: datetime) -> None:
        """Write an outbox message built by `pathway.domain.envelopes`, in the change's transaction."""
        tx.add_outbox(type=message["type"], enrollment_id=message["enrollment"], payload=message, at=at)

    # definitions ------------------------------------------------------------------
    def workflow_of(self, enrollment: Enrollment) -> Workflow:
        return self.catalog.get(enrollment.pathway, enrollment.pathway_version)

    def machine_of(self, workflow: Workflow) -> PathwayMachine:
        return machine_for(workflow, self.catalog.guards)

    def _region_of(self, enrollment: Enrollment) -> str | None:
        try:
            return self.workflow_of(enrollment).region or None
        except NotFound:
            return None

    # who --------------------------------------------------------------------------
    def _who(self, actor: str | None, role: str | None) -> tuple[str, str]:
        """Who is acting, in which role: each given, or the clinic's. A blank one, or a
        role that no loaded pathway has (a typo), is refused rather than replaced."""
        who = check_text(self.actor if actor is None else actor, "actor", MAX_NAME, one_line=True)
        if who is None:
            raise InvalidInput("actor: empty: say who is acting (--actor or PATHWAY_ACTOR)")
        as_ = self.known_role(self.role if role is None else role)
        if as_ is None:
            raise InvalidInput(
                f"role: empty: give one of {', '.join(self._roles())} (--role or PATHWAY_ROLE)"
            )
        return who, as_

    def known_role(self, role: str | None) -> str | None:
        """`role` when a loaded pathway has it (None for none or a blank one); a typo is
        refused, never quietly used, by commands and questions alike (check, worklist)."""
        given = check_text(role, "role", 100, one_line=True)
        if given is None:
            return None
        roles = self._roles()
        if given not in roles:
            raise InvalidInput(f"--role: unknown role {given!r} (roles: {', '.join(roles)})")
        return given

    def _roles(self) -> tuple[str, ...]:
        """Every role of the loaded pathways, sorted."""
        if self._known_roles is None:
            self._known_roles = tuple(sorted({r for w in self.catalog.all() for r in w.roles}))
        return self._known_roles

    # which enrollment ---------------------------------------------------------------
    @staticmethod
    def _family(tx: Tx, patient: str) -> list[Enrollment]:
        """Every enrollment of the patient, oldest first; NotFound for an unknown patient."""
        check_patient_id(patient)
        family = tx.enrollments_of_identifier(patient)
        if not family:
            raise NotFound(
                "no patient with that identifier: check it, or enroll them first "
                "(pathway enroll PATIENT --pathway ID)"
            )
        return family

    def _resolve(
        self, tx: Tx, patient: str, pathway: str | None, *, for_write: bool, at: datetime | None = None
    ) -> tuple[Enrollment, list[Enrollment]]:
        """The enrollment a command means: the open one (chosen by `pathway` when there are
        several), or for reading, the latest closed one; with all of the patient's enrollments.
        With `at` (reading), the episode as it stood then, replayed from its events."""
        family = self._family(tx, patient)
        found = family
        if pathway is not None:
            found = [e for e in found if e.pathway == pathway]
            if not found:
                if pathway not in self.catalog.ids():
                    self.catalog.get(pathway)  # "unknown pathway", with the known ones
                raise NotFound(f"the patient has no enrollment in {pathway}")
        if at is not None:
            return self._episode_at(tx, patient, found, at), family
        open_ = [e for e in found if e.is_open]
        if len(open_) > 1:
            names = ", ".join(e.pathway for e in open_)
            raise AmbiguousEnrollment(
                f"the patient has open enrollments in {names}: choose one with --pathway"
            )
        if open_:
            return open_[0], family
        latest = found[-1]
        if for_write:
            raise EnrollmentClosed(
                f"the patient's enrollment in {latest.pathway} is closed ({latest.state} since "
                f"{iso(latest.entered_state_at)}): enroll again for a new episode"
            )
        return latest, family

    def _episode_at(self, tx: Tx, patient: str, found: list[Enrollment], when: datetime) -> Enrollment:
        """Of a patient's enrollments `found`, the one that stood at `when` (open then, else
        the latest closed by then), as it stood; NotFound if none had begun."""
        began = self._rewound(tx, [e for e in found if e.opened_at <= when], when)
        if not began:
            first = min(found, key=lambda e: e.opened_at)
            raise NotFound(
                f"the patient was not yet enrolled in {first.pathway if len(found) == 1 else 'a pathway'} "
                f"at {iso(when)} (enrolled {iso(first.opened_at)})"
            )
        open_then = [e for e in began if e.is_open]
        if len(open_then) > 1:
            names = ", ".join(e.pathway for e in open_then)
            raise AmbiguousEnrollment(
                f"the patient had open enrollments in {names}: choose one with --pathway"
            )
        return open_then[0] if open_then else max(began, key=lambda e: (e.opened_at, e.id))

    def _rewound(self, tx: Tx, rows: list[Enrollment], when: datetime) -> list[Enrollment]:
        """`rows` as they stood at `when` (see `pathway.domain.asof.rewound`)."""

        def events_of(ids: list[int]) -> dict[int, list[Event]]:
            found: dict[int, list[Event]] = {}
            for start in range(0, len(ids), 900):  # bound ids in pieces (old SQLite allows 999)
                for event in tx.events_of(ids[start : start + 900]):
                    found.setdefault(event.enrollment_id, []).append(event)
            return found

        return asof.rewound(rows, events_of, when, lambda e, version: self.catalog.get(e.pathway, version))

    # what guards read -------------------------------------------------------------
    def _record(
        self,
        tx: UnitOfWork,
        enrollment: Enrollment,
        family: list[Enrollment],
        now: datetime,
        *,
        reason: str | None = None,
        extra: Observation | None = None,
    ) -> PatientRecord:
        """What guards read: this enrollment and every same-region enrollment of the patient
        (`family` is all of the patient's enrollments), loaded on first use."""
        workflow = self.workflow_of(enrollment)
        siblings = [enrollment]
        if workflow.region:
            siblings = [e for e in family if e.id == enrollment.id or self._region_of(e) == workflow.region]
        ids = {e.id for e in siblings}
        by_id = {e.id: e for e in siblings}

        def load_observations() -> tuple[list[Observation], list[Observation]]:
            # One query for the patient's observations; other regions are dropped here.
            region = [
                self._decoded(o, by_id[o.enrollment_id])
                for o in tx.patient_observations(enrollment.patient_id)
                if o.enrollment_id in ids
            ]
            if extra is not None:
                region.append(extra)
            return [o for o in region if o.enrollment_id == enrollment.id], region

        def load_events() -> tuple[list[Event], list[Event]]:
            # A voided close and its reopen are not facts the guards judge (effects.live).
            region = live(e for e in tx.patient_events(enrollment.patient_id) if e.enrollment_id in ids)
            return [e for e in region if e.enrollment_id == enrollment.id], region

        return PatientRecord(
            enrollment, now, load_observations, load_events, reason=reason, zone=self.zone, recording=extra
        )

    def _decoded(self, obs: Observation, enrollment: Enrollment) -> Observation:
        try:
            kind = self.workflow_of(enrollment).kinds.get(obs.kind)
        except NotFound:
            kind = None
        if not fields.date_fields(kind):
            return obs
        return replace(obs, data=fields.decode(kind, obs.data))

    @staticmethod
    def _describe(enrollment: Enrollment) -> str:
        return f"the patient ({enrollment.state})"
