"""Enrolling a patient: the first episode creates the patient; a later one may start once
the previous episode of the same region closed (`pathway.domain.episodes`).

One transaction: the patient, the enrollment, its enroll event and outbox message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from pathway.domain import chain, envelopes
from pathway.domain.definition import Workflow
from pathway.domain.effects import ENROLL
from pathway.domain.episodes import overlap
from pathway.domain.record import Enrollment, Event
from pathway.domain.timeutil import When, effective, iso, utcnow
from pathway.errors import AlreadyEnrolled, ConcurrencyError, InvalidInput, InvalidTime, RoleRefused
from pathway.service.inputs import MAX_NAME, check_patient_id, check_text
from pathway.service.queries import Queries
from pathway.service.results import Status
from pathway.store.repository import Tx


class Enrolling(Queries):
    """`enroll` (see `pathway.Clinic`)."""

    def enroll(
        self,
        patient: str,
        pathway: str,
        *,
        profile: str | None = None,
        name: str | None = None,
        at: When = None,
        actor: str | None = None,
        role: str | None = None,
        identifier_system: str | None = None,
        referral: tuple[str | None, str] | None = None,
    ) -> Status:
        """Enroll `patient` (an external identifier such as an MRN) in `pathway` at its
        latest version; the patient is created on first enrollment. A new episode may
        start once the previous one of the patient in the same region closed.

        `identifier_system` (the system of the patient's identifier) is kept for a new
        patient, or one without a system yet; `referral` (system, value) names the
        referral the episode comes from (FHIR import keeps a ServiceRequest's identifier)."""
        check_patient_id(patient)
        name = check_text(name, "name", MAX_NAME, one_line=True)
        actor, role = self._who(actor, role)
        workflow = self.catalog.get(pathway)
        profile = profile or workflow.default_profile
        if profile not in workflow.profiles:
            raise InvalidInput(
                f"--profile: unknown profile {profile!r} for {pathway} "
                f"(profiles: {', '.join(workflow.profiles)})"
            )
        if role not in workflow.roles:
            raise RoleRefused(
                f"cannot enroll in {pathway} as {role}: roles are {', '.join(workflow.roles)}",
                workflow.roles,
            )
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        for attempt in (1, 2):
            try:
                with self.store.write() as tx:
                    return self._enroll_in(
                        tx,
                        patient,
                        workflow,
                        profile,
                        name,
                        actor,
                        role,
                        when,
                        recorded,
                        identifier_system,
                        referral,
                    )
            except ConcurrencyError:
                # The patient was added by another enrollment at the same moment (PostgreSQL:
                # their row became visible only as it committed): once more, now seeing them.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _enroll_in(
        self,
        tx: Tx,
        patient: str,
        workflow: Workflow,
        profile: str,
        name: str | None,
        actor: str,
        role: str,
        when: datetime,
        recorded: datetime,
        identifier_system: str | None,
        referral: tuple[str | None, str] | None,
    ) -> Status:
        row = tx.find_patient(patient)
        if row is None:
            patient_id = tx.add_patient(patient, name, recorded, system=identifier_system)
        else:
            patient_id = row.id
            known_system = row.identifier_system
            if identifier_system and known_system and identifier_system != known_system:
                raise InvalidInput(
                    f"the patient is known with identifier system {known_system}, not "
                    f"{identifier_system}: check the identifier"
                )
            _refuse_overlap(tx.enrollments_of(patient_id), workflow.id, when, self.catalog.region)
            if name and name != row.display_name:
                tx.set_display_name(patient_id, name)
            if identifier_system and not known_system:
                tx.set_identifier_system(patient_id, identifier_system)
        event = Event(
            enrollment_id=0,
            seq=1,
            trigger=ENROLL,
            from_state=None,
            to_state=workflow.initial,
            actor=actor,
            role=role,
            effective_at=when,
            recorded_at=recorded,
            payload={"profile": profile},
            chain_seq=1,
        )
        head = chain.link(None, chain.of_event(patient, workflow.id, event))
        enrollment_id = tx.add_enrollment(
            patient_id=patient_id,
            pathway=workflow.id,
            version=workflow.version,
            profile=profile,
            state=workflow.initial,
            at=when,
            chain_head=head,
            referral=referral,
        )
        enrollment = tx.enrollment(enrollment_id)
        tx.add_event(replace(event, enrollment_id=enrollment_id, hash=head))
        message = envelopes.opened(
            enrollment=enrollment.id,
            patient=patient,
            pathway=workflow.id,
            version=workflow.version,
            state=workflow.initial,
            effective=when,
            recorded=recorded,
            actor=actor,
            role=role,
        )
        self._emit(tx, message, recorded)
        return self._status(tx, enrollment, tx.enrollments_of(patient_id), when, role=None)


def _refuse_overlap(
    family: list[Enrollment], pathway: str, when: datetime, region: Callable[[str], str]
) -> None:
    """Refuse a new episode of `pathway` at `when` that would overlap one of the patient's."""
    found = overlap(family, pathway, when, region)
    if found is None:
        return
    if found.open is not None:
        existing = found.open
        where = pathway if existing.pathway == pathway else f"{existing.pathway} ({found.region})"
        raise AlreadyEnrolled(
            f"the patient already has an open enrollment in {where} ({existing.state} since "
            f"{iso(existing.entered_state_at)}): episodes in one region may not overlap"
        )
    assert found.closed_at is not None
    raise InvalidTime(
        f"--at {iso(when)} is before the patient's previous episode in {found.region} closed "
        f"({iso(found.closed_at)}): episodes may not overlap"
    )
