"""The commands that change a patient's pathway: enroll, record, correct, advance.

Each is one transaction: the change, its event (or observation) and its outbox
message commit together or not at all, and a refused command writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pathway.domain import chain, envelopes, fields
from pathway.domain.definition import Workflow
from pathway.domain.effects import ENROLL, after_event, position_of
from pathway.domain.record import Enrollment, Event, Observation
from pathway.domain.timeutil import When, effective, iso, local_day, utcnow
from pathway.domain.verdicts import refusal
from pathway.errors import (
    AlreadyEnrolled,
    ConcurrencyError,
    GuardRefused,
    InvalidInput,
    InvalidTime,
    NotFound,
    RoleRefused,
)
from pathway.service.inputs import MAX_NAME, MAX_REASON, check_patient_id, check_text
from pathway.service.queries import Queries
from pathway.service.results import Status, Transitioned
from pathway.store.repository import Tx


class Commands(Queries):
    """enroll, record, correct and advance (see `pathway.Clinic`)."""

    def _refuse_overlap(self, family: list[Enrollment], workflow: Workflow, when: datetime) -> None:
        """A new episode may not overlap the patient's others in the same region: none may be
        open, and it may not start before the latest of them closed (clarification 8)."""
        region = workflow.region or workflow.id
        same = [e for e in family if (self._region_of(e) or e.pathway) == region]
        for existing in same:
            if existing.is_open:
                where = workflow.id if existing.pathway == workflow.id else f"{existing.pathway} ({region})"
                raise AlreadyEnrolled(
                    f"the patient already has an open enrollment in {where} ({existing.state} since "
                    f"{iso(existing.entered_state_at)}): episodes in one region may not overlap"
                )
        closed = max((e.closed_at for e in same if e.closed_at is not None), default=None)
        if closed is not None and when < closed:
            raise InvalidTime(
                f"--at {iso(when)} is before the patient's previous episode in {region} closed "
                f"({iso(closed)}): episodes may not overlap"
            )

    @staticmethod
    def _chained(enrollment: Enrollment, event: Event) -> Event:
        """`event`, the enrollment's next change, with its place and hash in the chain."""
        place = enrollment.version + 1
        placed = replace(event, chain_seq=place)
        head = chain.link(enrollment.chain_head, _event_entry(enrollment.patient, enrollment.pathway, placed))
        return replace(placed, hash=head)

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
            self._refuse_overlap(tx.enrollments_of(patient_id), workflow, when)
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
        head = chain.link(None, _event_entry(patient, workflow.id, event))
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

    def record(
        self,
        patient: str,
        kind: str,
        values: Mapping[str, Any],
        *,
        at: When = None,
        pathway: str | None = None,
        actor: str | None = None,
        role: str | None = None,
    ) -> Observation:
        """Record an observation of `kind` (fields validated, all problems at once).

        Returns the stored observation (its `id` is what `correct` takes)."""
        actor, role = self._who(actor, role)
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.write() as tx:
            enrollment, family = self._resolve(tx, patient, pathway, for_write=True)
            workflow = self.workflow_of(enrollment)
            spec = workflow.kinds.get(kind)
            if spec is None:
                raise InvalidInput(
                    f"unknown observation kind {kind!r} in {workflow.id} (kinds: {', '.join(workflow.kinds)})"
                )
            if role not in spec.roles:
                raise RoleRefused(
                    f"cannot record {kind}: the {role} role may not; it needs {' or '.join(spec.roles)}",
                    spec.roles,
                )
            stored = fields.validate(spec, values)
            day = local_day(when, self.zone)
            if day < local_day(enrollment.opened_at, self.zone):
                raise InvalidTime(
                    f"--at {iso(when)} is before this episode began ({iso(enrollment.opened_at)}): "
                    "record it on or after that day"
                )
            fields.refuse_later_dates(spec, stored, day)
            candidate = Observation(
                id=0,
                enrollment_id=enrollment.id,
                kind=kind,
                data=fields.decode(spec, stored),
                effective_at=when,
                recorded_at=recorded,
                actor=actor,
                role=role,
            )
            if spec.guards:
                record = self._record(tx, enrollment, family, when, extra=candidate)
                verdicts = [self.catalog.guards.evaluate(workflow, g, record) for g in spec.guards]
                if not all(v.passed for v in verdicts):
                    messages = refusal(verdicts)
                    raise GuardRefused(
                        f"cannot record {kind}: {messages}",
                        f"record {kind}",
                        verdicts,
                    )
            place = enrollment.version + 1
            head = chain.link(
                enrollment.chain_head,
                chain.observation_entry(
                    patient=enrollment.patient,
                    pathway=enrollment.pathway,
                    chain_seq=place,
                    kind=kind,
                    data=stored,
                    effective_at=when,
                    recorded_at=recorded,
                    actor=actor,
                    role=role,
                ),
            )
            tx.touch(enrollment, head)
            obs_id = tx.add_observation(
                enrollment_id=enrollment.id,
                kind=kind,
                data=stored,
                effective_at=when,
                recorded_at=recorded,
                actor=actor,
                role=role,
                chain_seq=place,
                hash=head,
            )
            message = envelopes.recorded(
                enrollment,
                observation=obs_id,
                kind=kind,
                effective=when,
                recorded=recorded,
                actor=actor,
                role=role,
            )
            self._emit(tx, message, recorded)
            return replace(candidate, id=obs_id, chain_seq=place, hash=head)

    def correct(
        self,
        patient: str,
        observation_id: int,
        *,
        reason: str,
        at: When = None,
        actor: str | None = None,
        role: str | None = None,
    ) -> Observation:
        """Mark an observation entered-in-error, with a reason. It is never edited or deleted;
        record the right value as a new observation."""
        actor, role = self._who(actor, role)
        reason_text = check_text(reason, "--reason", MAX_REASON)
        if not reason_text:
            raise InvalidInput("--reason: say why the observation is wrong")
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.write() as tx:
            check_patient_id(patient)
            row = tx.find_patient(patient)
            obs = tx.observation(int(observation_id))
            mine = {e.id: e for e in tx.enrollments_of(row.id)} if row else {}
            if obs is None or obs.enrollment_id not in mine:
                raise NotFound(f"the patient has no observation {observation_id}")
            if obs.entered_in_error:
                raise InvalidInput(
                    f"observation {observation_id} is already marked entered-in-error "
                    f"(on {iso(obs.error_at)}): a correction is final"
                )
            if when < obs.effective_at:
                raise InvalidTime(
                    f"--at {iso(when)} is before observation {observation_id} took effect "
                    f"({iso(obs.effective_at)}): a correction cannot precede what it corrects"
                )
            enrollment = mine[obs.enrollment_id]
            spec = self.workflow_of(enrollment).kinds.get(obs.kind)
            if spec is not None and role not in spec.roles:
                raise RoleRefused(
                    f"cannot correct {obs.kind}: the {role} role may not; it needs {' or '.join(spec.roles)}",
                    spec.roles,
                )
            place = enrollment.version + 1
            head = chain.link(
                enrollment.chain_head,
                chain.correction_entry(
                    patient=enrollment.patient,
                    pathway=enrollment.pathway,
                    chain_seq=place,
                    observation_chain_seq=obs.chain_seq,
                    reason=reason_text,
                    actor=actor,
                    role=role,
                    effective_at=when,
                    recorded_at=recorded,
                ),
            )
            tx.touch(enrollment, head)
            tx.mark_entered_in_error(
                obs.id,
                reason=reason_text,
                actor=actor,
                role=role,
                at=when,
                recorded=recorded,
                chain_seq=place,
                hash=head,
            )
            message = envelopes.corrected(
                enrollment,
                observation=obs.id,
                kind=obs.kind,
                reason=reason_text,
                effective=when,
                recorded=recorded,
                actor=actor,
                role=role,
            )
            self._emit(tx, message, recorded)
            return replace(
                obs,
                entered_in_error=True,
                error_reason=reason_text,
                error_actor=actor,
                error_at=when,
                error_role=role,
                error_recorded_at=recorded,
                error_chain_seq=place,
                error_hash=head,
            )

    def advance(
        self,
        patient: str,
        trigger: str,
        *,
        at: When = None,
        reason: str | None = None,
        pathway: str | None = None,
        actor: str | None = None,
        role: str | None = None,
        expected_version: int | None = None,
    ) -> Transitioned:
        """Fire `trigger` for the patient's enrollment.

        Raises InvalidTrigger (names the triggers possible now), RoleRefused,
        GuardRefused (carries every verdict), InvalidTime (before the previous
        event) or ConcurrencyError (someone else changed it; `expected_version`
        makes a stale read count as that too)."""
        actor, role = self._who(actor, role)
        reason = check_text(reason, "--reason", MAX_REASON)
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.write() as tx:
            enrollment, family = self._resolve(tx, patient, pathway, for_write=True)
            if expected_version is not None and enrollment.version != expected_version:
                raise ConcurrencyError(
                    f"the enrollment changed since it was read (version {expected_version}, "
                    f"now {enrollment.version}): check its status and retry"
                )
            if when < enrollment.last_event_at:
                raise InvalidTime(
                    f"--at {iso(when)} is before the patient's previous event "
                    f"({iso(enrollment.last_event_at)}); events must be in order"
                )
            workflow = self.workflow_of(enrollment)
            record = self._record(tx, enrollment, family, when, reason=reason)
            fired = self.machine_of(workflow).fire(
                enrollment.state, enrollment.held_from, trigger, record, role, self._describe(enrollment)
            )
            event = Event(
                enrollment_id=enrollment.id,
                seq=enrollment.last_seq + 1,
                trigger=trigger,
                from_state=enrollment.state,
                to_state=fired.dest,
                actor=actor,
                role=role,
                effective_at=when,
                recorded_at=recorded,
                reason=reason,
            )
            event = self._chained(enrollment, event)
            tx.add_event(event)  # first: the database checks the enrollment follows its event
            position = after_event(position_of(enrollment), event, before=workflow, after=workflow)
            tx.save_state(enrollment, position, event.hash or "")
            message = envelopes.transitioned(
                enrollment,
                trigger=trigger,
                to_state=fired.dest,
                seq=event.seq,
                reason=reason,
                effective=when,
                recorded=recorded,
                actor=actor,
                role=role,
            )
            self._emit(tx, message, recorded)
            return Transitioned(
                patient, enrollment.pathway, trigger, enrollment.state, fired.dest, when, event.seq
            )


def _event_entry(patient: str, pathway: str, event: Event) -> dict[str, Any]:
    """The hash chain's entry of an event (see `pathway.domain.chain`)."""
    return chain.event_entry(
        patient=patient,
        pathway=pathway,
        chain_seq=event.chain_seq or 0,
        seq=event.seq,
        trigger=event.trigger,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        role=event.role,
        effective_at=event.effective_at,
        recorded_at=event.recorded_at,
        reason=event.reason,
        payload=event.payload,
        voids=event.voids,
    )
