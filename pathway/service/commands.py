"""The commands that change a patient's pathway: enroll, record, correct, advance.

Each is one transaction: the change, its event (or observation) and its outbox
message commit together or not at all, and a refused command writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pathway.domain import chain, envelopes, fields
from pathway.domain.effects import after_event, position_of
from pathway.domain.record import Enrollment, Event, Observation
from pathway.domain.timeutil import When, effective, iso, local_day, utcnow
from pathway.domain.verdicts import refusal
from pathway.errors import (
    GuardRefused,
    InvalidInput,
    InvalidTime,
    NotFound,
    RoleRefused,
    VersionMismatch,
)
from pathway.service.enrolling import Enrolling
from pathway.service.inputs import MAX_REASON, check_patient_id, check_text
from pathway.service.results import Transitioned


class Commands(Enrolling):
    """enroll (see `enrolling`), record, correct and advance (see `pathway.Clinic`)."""

    @staticmethod
    def _chained(enrollment: Enrollment, event: Event) -> Event:
        """`event`, the enrollment's next change, with its place and hash in the chain."""
        place = enrollment.version + 1
        placed = replace(event, chain_seq=place)
        head = chain.link(
            enrollment.chain_head, chain.of_event(enrollment.patient, enrollment.pathway, placed)
        )
        return replace(placed, hash=head)

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
        expected_version: int | None = None,
    ) -> Observation:
        """Record an observation of `kind` (fields validated, all problems at once).

        Returns the stored observation (its `id` is what `correct` takes); `expected_version`
        refuses it (VersionMismatch) when the enrollment changed since that version was read."""
        actor, role = self._who(actor, role)
        recorded = utcnow()
        when = effective(at, recorded, zone=self.zone)
        with self.store.write() as tx:
            enrollment, family = self._resolve(tx, patient, pathway, for_write=True)
            _expect(enrollment, expected_version)
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
        expected_version: int | None = None,
    ) -> Observation:
        """Mark an observation entered-in-error, with a reason. It is never edited or deleted;
        record the right value as a new observation. `expected_version` as for `record`."""
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
            _expect(enrollment, expected_version)
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
            _expect(enrollment, expected_version)
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


def _expect(enrollment: Enrollment, expected_version: int | None) -> None:
    """Refuse a change decided on another version of the enrollment than the stored one."""
    if expected_version is not None and enrollment.version != expected_version:
        raise VersionMismatch(
            f"the enrollment changed since it was read (version {expected_version}, "
            f"now {enrollment.version}): check its status and retry"
        )
