"""`Clinic`: the Python API, and the only place a transaction commits.

    from pathway import Clinic
    with Clinic.open("sqlite:///pathway.db", actor="dr.lee", role="physician") as clinic:
        clinic.enroll("MRN123", "cervical-neurotomy", at="2026-01-05")
        clinic.record("MRN123", "baseline", {"onset_date": "2025-06-01", "nrs": 7, ...})
        clinic.advance("MRN123", "start_evaluation")

Each write method is one transaction: the state change, its event and its
outbox message commit together or not at all.
"""

from __future__ import annotations

import getpass
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pathway.definitions.catalog import Catalog
from pathway.domain import fields
from pathway.domain.definition import Workflow
from pathway.domain.machine import PathwayMachine, TriggerCheck, machine_for
from pathway.domain.record import Enrollment, Event, Observation, PatientRecord, versions_after
from pathway.domain.timeutil import When, days_between, effective, to_utc, utcnow
from pathway.errors import (
    AlreadyEnrolled,
    AmbiguousEnrollment,
    ConcurrencyError,
    EnrollmentClosed,
    GuardRefused,
    InvalidInput,
    InvalidTime,
    NotFound,
    RoleRefused,
)
from pathway.service.results import Migrated, Status, Summary, Transitioned, iso
from pathway.store.repository import Store, Tx

if TYPE_CHECKING:  # imported where used: each pulls in more than most commands need
    from pathway.interop.delivery import DeliveryReport
    from pathway.interop.referrals import ImportReport
    from pathway.reports import BottleneckReport, RttReport
    from pathway.service.worklist import Item as WorklistItem

logger = logging.getLogger("pathway")

PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
MAX_NAME = 200
MAX_REASON = 2000


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def _check_patient_id(patient: str) -> str:
    if not isinstance(patient, str) or not PATIENT_ID.match(patient):
        shown = repr(patient)[:70]
        raise InvalidInput(
            f"patient: {shown} is not a valid identifier "
            "(1-64 letters, digits and . _ : / -, starting with a letter or digit)"
        )
    return patient


def _check_text(value: str | None, name: str, limit: int, *, one_line: bool = False) -> str | None:
    """`value` stripped (None when empty); free text (a reason) may span lines, a name
    (`one_line`) may not: it is shown in tables and logs one per line."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected text")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{name}: longer than {limit} characters")
    if fields.CONTROL.search(value):
        raise InvalidInput(f"{name}: contains control characters")
    if one_line and fields.LINE_BREAKS.search(value):
        raise InvalidInput(f"{name}: must be on one line (no tabs or line breaks)")
    return value or None


def _window(since: When, until: When) -> dict[str, datetime | None]:
    """--since and --until as UTC times; a window that ends before it begins is refused
    (it would report nothing, which looks like an empty clinic)."""
    start = to_utc(since, name="--since") if since else None
    end = to_utc(until, name="--until") if until else None
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"--since {iso(start)} is after --until {iso(end)}: nothing could be in between")
    return {"since": start, "until": end}


class Clinic:
    """A clinic's pathway engine over one database."""

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

    def outbox(self, *, pending_only: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Outbox messages, oldest first: the envelope plus delivery state."""
        with self.store.read() as tx:
            rows = tx.outbox_messages(pending_only=pending_only, limit=limit)
        return [
            {
                "message": row["payload"],
                "delivered_at": iso(row["delivered_at"]),
                "attempts": row["attempts"],
                "last_error": row["last_error"],
                "next_attempt_at": iso(row["next_attempt_at"]),
            }
            for row in rows
        ]

    def import_referrals(
        self,
        source: str | Path | Iterable[tuple[int, Mapping[str, str]]],
        *,
        pathway: str | None = None,
        skip_invalid: bool = False,
        actor: str | None = None,
        role: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Enroll every referral of a CSV file (or (line, row) pairs); see `pathway.interop.referrals`.

        Every row is validated first; with problems and without `skip_invalid`,
        nothing is written and the report lists them by line and field."""
        from pathway.interop import referrals

        actor, role = self._who(actor, role)
        rows = referrals.read_csv(source) if isinstance(source, str | Path) else source
        valid, problems, count = referrals.validate(rows, self.catalog, pathway, _check_patient_id)
        for workflow_id in {r.pathway for r in valid}:
            workflow = self.catalog.get(workflow_id)
            if role not in workflow.roles:
                raise RoleRefused(
                    f"cannot enroll in {workflow_id} as {role}: roles are {', '.join(workflow.roles)}",
                    workflow.roles,
                )
        report = referrals.ImportReport(rows=count, problems=problems)
        if problems and not skip_invalid:
            return report
        report.imported, report.already_enrolled = referrals.write(
            self.store, valid, actor=actor, role=role, progress=progress
        )
        return report

    def export_events(
        self, out: Any, fmt: str = "csv", *, pseudonymize: bool = False, pathway: str | None = None
    ) -> int:
        """Stream every event to the text file `out` as csv, jsonl or xes; returns the count.
        With `pseudonymize`, identifiers become keyed hashes (key in PATHWAY_PSEUDONYM_KEY)."""
        from pathway.interop import event_export as export

        key = export.pseudonym_key(pseudonymize)
        if fmt not in export.FORMATS:
            raise InvalidInput(f"--format: {fmt!r} is not one of {', '.join(export.FORMATS)}")
        if pathway is not None:
            self.catalog.get(pathway)  # an unknown pathway is NotFound, not an empty file
        return export.write_events(out, export.event_rows(self.store, key, pathway), fmt)

    def report_bottlenecks(
        self, *, pathway: str | None = None, since: When = None, until: When = None, as_of: When = None
    ) -> BottleneckReport:
        """The bottleneck report (see `pathway.reports.bottlenecks`)."""
        from pathway.reports import bottlenecks

        if pathway is not None:
            self.catalog.get(pathway)
        return bottlenecks(
            self.store,
            self.catalog,
            as_of=to_utc(as_of, name="--as-of"),
            pathway=pathway,
            **_window(since, until),
        )

    def report_rtt(self, *, pathway: str | None = None, as_of: When = None) -> RttReport:
        """The referral-to-treatment report (see `pathway.reports.rtt`)."""
        from pathway.reports import rtt

        if pathway is not None:
            self.catalog.get(pathway)
        return rtt(self.store, as_of=to_utc(as_of, name="--as-of"), pathway=pathway)

    def report_funnel(self, *, pathway: str | None = None, as_of: When = None) -> dict[str, Any]:
        """Stages reached, conversion and exits (see `pathway.reports.funnel`)."""
        from pathway.reports import funnel

        if pathway is not None:
            self.catalog.get(pathway)
        return funnel(self.store, self.catalog, as_of=to_utc(as_of, name="--as-of"), pathway=pathway)

    def report_outcomes(self, *, pathway: str | None = None, as_of: When = None) -> dict[str, Any]:
        """Six-month success, NRS/NDI change and repeats (see `pathway.reports.outcomes`)."""
        from pathway.reports import outcomes

        if pathway is not None:
            self.catalog.get(pathway)
        return outcomes(self.store, as_of=to_utc(as_of, name="--as-of"), pathway=pathway)

    def report_html(
        self, *, pathway: str | None = None, since: When = None, until: When = None, as_of: When = None
    ) -> str:
        """Every report as one self-contained HTML page (see `pathway.reports.html`)."""
        from pathway.reports.html import render

        if pathway is not None:
            self.catalog.get(pathway)
        return render(
            self.store,
            self.catalog,
            as_of=to_utc(as_of, name="--as-of"),
            pathway=pathway,
            **_window(since, until),
        )

    def worklist(self, *, as_of: When = None, role: str | None = None) -> list[WorklistItem]:
        """What needs action, most urgent first (see `pathway.service.worklist`)."""
        from pathway.service.worklist import worklist

        return worklist(self, as_of=to_utc(as_of, name="--as-of"), role=role)

    def deliver_outbox(self, url: str, **options: Any) -> DeliveryReport:
        """POST pending outbox messages to `url` (see `pathway.interop.delivery.deliver`)."""
        from pathway.interop.delivery import deliver

        return deliver(self.store, url, **options)

    @classmethod
    def open(
        cls,
        url: str = "sqlite:///pathway.db",
        *,
        workflows: Iterable[str | Path] = (),
        actor: str | None = None,
        role: str = "coordinator",
        create: bool = True,
    ) -> Clinic:
        """Open the database at `url` (creating the schema in an empty one) with the
        shipped pathways plus any `workflows` directories. `actor` and `role` are the
        defaults for every change made through this clinic."""
        catalog = Catalog.discover(workflows)
        store = Store.open(url, create=create)
        return cls(store, catalog, actor=actor, role=role)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Clinic:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # helpers --------------------------------------------------------------------
    def workflow_of(self, enrollment: Enrollment) -> Workflow:
        return self.catalog.get(enrollment.pathway, enrollment.pathway_version)

    def machine_of(self, workflow: Workflow) -> PathwayMachine:
        return machine_for(workflow, self.catalog.guards)

    def _who(self, actor: str | None, role: str | None) -> tuple[str, str]:
        """Who is acting, in which role: each given, or the clinic's. A blank one, or a
        role that no loaded pathway has (a typo), is refused rather than replaced."""
        who = _check_text(self.actor if actor is None else actor, "actor", MAX_NAME, one_line=True)
        if who is None:
            raise InvalidInput("actor: empty: say who is acting (--actor or PATHWAY_ACTOR)")
        as_ = _check_text(self.role if role is None else role, "role", 100, one_line=True)
        roles = self._roles()
        if as_ is None:
            raise InvalidInput(f"role: empty: give one of {', '.join(roles)} (--role or PATHWAY_ROLE)")
        if as_ not in roles:
            raise RoleRefused(f"unknown role {as_!r}: the roles are {', '.join(roles)}", roles)
        return who, as_

    def _roles(self) -> tuple[str, ...]:
        """Every role of the loaded pathways, sorted."""
        if self._known_roles is None:
            self._known_roles = tuple(sorted({r for w in self.catalog.all() for r in w.roles}))
        return self._known_roles

    def _resolve(
        self, tx: Tx, patient: str, pathway: str | None, *, for_write: bool, at: datetime | None = None
    ) -> tuple[Enrollment, list[Enrollment]]:
        """The enrollment a command means: the open one (chosen by `pathway` when there are
        several), or for reading, the latest closed one; with all of the patient's enrollments.
        With `at` (reading), the episode as it stood then, replayed from its events."""
        _check_patient_id(patient)
        family = tx.enrollments_of_identifier(patient)
        if not family:
            raise NotFound(
                f"no patient {patient!r}: enroll them first (pathway enroll {patient} --pathway ID)"
            )
        found = family
        if pathway is not None:
            found = [e for e in found if e.pathway == pathway]
            if not found:
                if pathway not in self.catalog.ids():
                    self.catalog.get(pathway)  # "unknown pathway", with the known ones
                raise NotFound(f"{patient} has no enrollment in {pathway}")
        if at is not None:
            return self._episode_at(tx, patient, found, at), family
        open_ = [e for e in found if e.is_open]
        if len(open_) > 1:
            names = ", ".join(e.pathway for e in open_)
            raise AmbiguousEnrollment(f"{patient} has open enrollments in {names}: choose one with --pathway")
        if open_:
            return open_[0], family
        latest = found[-1]
        if for_write:
            raise EnrollmentClosed(
                f"{patient}'s enrollment in {latest.pathway} is closed ({latest.state} since "
                f"{iso(latest.entered_state_at)}): enroll again for a new episode"
            )
        return latest, family

    def _record(
        self,
        tx: Tx,
        enrollment: Enrollment,
        family: list[Enrollment],
        now: datetime,
        *,
        reason: str | None = None,
        extra: Observation | None = None,
    ) -> PatientRecord:
        """Load what guards read: this enrollment and every same-region enrollment of the patient
        (`family` is all of the patient's enrollments)."""
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
            region = [e for e in tx.patient_events(enrollment.patient_id) if e.enrollment_id in ids]
            return [e for e in region if e.enrollment_id == enrollment.id], region

        return PatientRecord(enrollment, now, load_observations, load_events, reason=reason)

    def _episode_at(self, tx: Tx, patient: str, found: list[Enrollment], when: datetime) -> Enrollment:
        """Of a patient's enrollments `found`, the one that stood at `when` (open then, else
        the latest closed by then), as it stood; NotFound if none had begun."""
        began = self._rewound(tx, [e for e in found if e.opened_at <= when], when)
        if not began:
            first = min(found, key=lambda e: e.opened_at)
            raise NotFound(
                f"{patient} was not yet enrolled in {first.pathway if len(found) == 1 else 'a pathway'} "
                f"at {iso(when)} (enrolled {iso(first.opened_at)})"
            )
        open_then = [e for e in began if e.is_open]
        if len(open_then) > 1:
            names = ", ".join(e.pathway for e in open_then)
            raise AmbiguousEnrollment(f"{patient} had open enrollments in {names}: choose one with --pathway")
        return open_then[0] if open_then else max(began, key=lambda e: (e.opened_at, e.id))

    def _rewound(self, tx: Tx, rows: list[Enrollment], when: datetime) -> list[Enrollment]:
        """`rows` as they stood at `when`: one changed since is replayed from its events, one
        that began after is left out."""
        later = [e.id for e in rows if e.last_event_at > when]
        if not later:
            return rows
        events: dict[int, list[Event]] = {}
        for start in range(0, len(later), 900):  # bound ids in pieces (old SQLite allows 999)
            for event in tx.events_of(later[start : start + 900]):
                events.setdefault(event.enrollment_id, []).append(event)
        result = []
        for e in rows:
            if e.last_event_at <= when:
                result.append(e)
                continue
            then = self._replay(e, sorted(events.get(e.id, []), key=lambda x: x.seq), when)
            if then is not None:
                result.append(then)
        return result

    def _replay(self, enrollment: Enrollment, events: list[Event], when: datetime) -> Enrollment | None:
        """The enrollment after its events up to `when` (seq order), as `advance` and
        `migrate` left it then; None when its first event is later. Each event is read
        with the workflow version the enrollment was on at the time (a migration may have
        renamed or dropped states since)."""
        past = [e for e in events if e.effective_at <= when]
        if not past:
            return None
        after = versions_after(events, enrollment.pathway_version)
        state, held_from, entered = past[0].to_state, None, past[0].effective_at
        for i, e in enumerate(past[1:], 1):
            if e.trigger == "migrate":
                continue
            workflow = self.catalog.get(enrollment.pathway, after[i])
            before = self.catalog.get(enrollment.pathway, after[i - 1])
            if workflow.state(e.to_state).hold:  # as advance: a hold remembers where it came from
                held_from = held_from if before.state(state).hold else state
            else:
                held_from = None
            if e.to_state != state:
                entered = e.effective_at
            state = e.to_state
        last = past[-1]
        version = after[len(past) - 1]
        return replace(
            enrollment,
            pathway_version=version,
            state=state,
            held_from=held_from,
            entered_state_at=entered,
            closed_at=last.effective_at
            if self.catalog.get(enrollment.pathway, version).state(state).terminal
            else None,
            last_event_at=last.effective_at,
            last_seq=last.seq,
        )

    def _region_of(self, enrollment: Enrollment) -> str | None:
        try:
            return self.workflow_of(enrollment).region or None
        except NotFound:
            return None

    def _decoded(self, obs: Observation, enrollment: Enrollment) -> Observation:
        try:
            kind = self.workflow_of(enrollment).kinds.get(obs.kind)
        except NotFound:
            kind = None
        if not fields.date_fields(kind):
            return obs
        return replace(obs, data=fields.decode(kind, obs.data))

    def _describe(self, enrollment: Enrollment) -> str:
        return f"{enrollment.patient} ({enrollment.state})"

    @staticmethod
    def _outbox(tx: Tx, type_: str, enrollment: Enrollment, at: datetime, **body: Any) -> None:
        message = {
            "id": str(uuid.uuid4()),
            "type": type_,
            "enrollment": enrollment.id,
            "patient": enrollment.patient,
            "pathway": enrollment.pathway,
            "pathway_version": enrollment.pathway_version,
            **body,
        }
        tx.add_outbox(type=type_, enrollment_id=enrollment.id, payload=message, at=at)

    # commands ---------------------------------------------------------------------
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
    ) -> Status:
        """Enroll `patient` (an external identifier such as an MRN) in `pathway` at its
        latest version; the patient is created on first enrollment. A new episode may
        start once the previous enrollment in the pathway is closed."""
        _check_patient_id(patient)
        name = _check_text(name, "name", MAX_NAME, one_line=True)
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
        when = effective(at, recorded)
        with self.store.write() as tx:
            row = tx.find_patient(patient)
            if row is None:
                patient_id = tx.add_patient(patient, name, recorded)
            else:
                patient_id = row.id
                for existing in tx.enrollments_of(patient_id):
                    if existing.pathway == workflow.id and existing.is_open:
                        raise AlreadyEnrolled(
                            f"{patient} already has an open enrollment in {workflow.id} "
                            f"({existing.state} since {iso(existing.entered_state_at)})"
                        )
                if name and name != row.display_name:
                    tx.set_display_name(patient_id, name)
            enrollment_id = tx.add_enrollment(
                patient_id=patient_id,
                pathway=workflow.id,
                version=workflow.version,
                profile=profile,
                state=workflow.initial,
                at=when,
            )
            enrollment = tx.enrollment(enrollment_id)
            event = Event(
                enrollment_id=enrollment_id,
                seq=1,
                trigger="enroll",
                from_state=None,
                to_state=workflow.initial,
                actor=actor,
                role=role,
                effective_at=when,
                recorded_at=recorded,
                payload={"profile": profile},
            )
            tx.add_event(event)
            self._outbox(
                tx,
                "enrollment.opened",
                enrollment,
                recorded,
                trigger="enroll",
                **{"from": None, "to": workflow.initial},
                effective_at=iso(when),
                recorded_at=iso(recorded),
                actor=actor,
                role=role,
            )
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
        when = effective(at, recorded)
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
                    f"cannot record {kind} for {patient}: the {role} role may not; "
                    f"it needs {' or '.join(spec.roles)}",
                    spec.roles,
                )
            stored = fields.validate(spec, values)
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
                    messages = "; ".join(f.message for v in verdicts for f in v.failures)
                    raise GuardRefused(
                        f"cannot record {kind} for {patient}: {messages}",
                        f"record {kind}",
                        verdicts,
                    )
            tx.touch(enrollment)
            obs_id = tx.add_observation(
                enrollment_id=enrollment.id,
                kind=kind,
                data=stored,
                effective_at=when,
                recorded_at=recorded,
                actor=actor,
                role=role,
            )
            self._outbox(
                tx,
                "observation.recorded",
                enrollment,
                recorded,
                observation={"id": obs_id, "kind": kind},
                effective_at=iso(when),
                recorded_at=iso(recorded),
                actor=actor,
                role=role,
            )
            return replace(candidate, id=obs_id)

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
        reason_text = _check_text(reason, "--reason", MAX_REASON)
        if not reason_text:
            raise InvalidInput("--reason: say why the observation is wrong")
        recorded = utcnow()
        when = effective(at, recorded)
        with self.store.write() as tx:
            _check_patient_id(patient)
            row = tx.find_patient(patient)
            obs = tx.observation(int(observation_id))
            mine = {e.id: e for e in tx.enrollments_of(row.id)} if row else {}
            if obs is None or obs.enrollment_id not in mine:
                raise NotFound(f"{patient} has no observation {observation_id}")
            if obs.entered_in_error:
                raise InvalidInput(
                    f"observation {observation_id} is already marked entered-in-error ({obs.error_reason})"
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
                    f"cannot correct {obs.kind} for {patient}: the {role} role may not; "
                    f"it needs {' or '.join(spec.roles)}",
                    spec.roles,
                )
            tx.touch(enrollment)
            tx.mark_entered_in_error(
                obs.id, reason=reason_text, actor=actor, role=role, at=when, recorded=recorded
            )
            self._outbox(
                tx,
                "observation.corrected",
                enrollment,
                recorded,
                observation={"id": obs.id, "kind": obs.kind},
                reason=reason_text,
                effective_at=iso(when),
                recorded_at=iso(recorded),
                actor=actor,
                role=role,
            )
            return replace(
                obs,
                entered_in_error=True,
                error_reason=reason_text,
                error_actor=actor,
                error_at=when,
                error_role=role,
                error_recorded_at=recorded,
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
        reason = _check_text(reason, "--reason", MAX_REASON)
        recorded = utcnow()
        when = effective(at, recorded)
        with self.store.write() as tx:
            enrollment, family = self._resolve(tx, patient, pathway, for_write=True)
            if expected_version is not None and enrollment.version != expected_version:
                raise ConcurrencyError(
                    f"{patient} changed since it was read (version {expected_version}, "
                    f"now {enrollment.version}): check its status and retry"
                )
            if when < enrollment.last_event_at:
                raise InvalidTime(
                    f"--at {iso(when)} is before {patient}'s previous event "
                    f"({iso(enrollment.last_event_at)}); events must be in order"
                )
            workflow = self.workflow_of(enrollment)
            machine = self.machine_of(workflow)
            record = self._record(tx, enrollment, family, when, reason=reason)
            fired = machine.fire(
                enrollment.state,
                enrollment.held_from,
                trigger,
                record,
                role,
                self._describe(enrollment),
            )
            dest_state = workflow.state(fired.dest)
            held_from = enrollment.state if dest_state.hold else None
            if dest_state.hold and workflow.state(enrollment.state).hold:
                held_from = enrollment.held_from
            seq = enrollment.last_seq + 1
            tx.save_state(
                enrollment,
                state=fired.dest,
                held_from=held_from,
                # A trigger that stays in its state (a self-loop) does not start a new stay.
                entered_state_at=enrollment.entered_state_at if fired.dest == enrollment.state else when,
                closed_at=when if dest_state.terminal else None,
                last_event_at=when,
                last_seq=seq,
            )
            tx.add_event(
                Event(
                    enrollment_id=enrollment.id,
                    seq=seq,
                    trigger=trigger,
                    from_state=enrollment.state,
                    to_state=fired.dest,
                    actor=actor,
                    role=role,
                    effective_at=when,
                    recorded_at=recorded,
                    reason=reason,
                )
            )
            self._outbox(
                tx,
                "enrollment.transitioned",
                enrollment,
                recorded,
                trigger=trigger,
                **{"from": enrollment.state, "to": fired.dest},
                seq=seq,
                reason=reason,
                effective_at=iso(when),
                recorded_at=iso(recorded),
                actor=actor,
                role=role,
            )
            return Transitioned(patient, enrollment.pathway, trigger, enrollment.state, fired.dest, when, seq)

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
        when = effective(at, recorded)
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
                raise ConcurrencyError(f"{enrollment.patient} changed during the migration; run it again")
            seq = enrollment.last_seq + 1
            tx.repin(enrollment, pathway_version=to_version, last_seq=seq, last_event_at=when)
            payload = {"from_version": enrollment.pathway_version, "to_version": to_version}
            tx.add_event(
                Event(
                    enrollment.id,
                    seq,
                    "migrate",
                    enrollment.state,
                    enrollment.state,
                    actor,
                    role,
                    when,
                    recorded,
                    payload=payload,
                )
            )
            self._outbox(
                tx,
                "enrollment.migrated",
                replace(enrollment, pathway_version=to_version),  # the envelope tells where it is now
                recorded,
                trigger="migrate",
                **{"from": enrollment.state, "to": enrollment.state},
                seq=seq,
                **payload,
                effective_at=iso(when),
                recorded_at=iso(recorded),
                actor=actor,
                role=role,
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
        when = effective(at, utcnow())
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
                            f"cannot sweep as {role}: {t.trigger} is due for {e.patient} and needs "
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

    # queries ----------------------------------------------------------------------
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
        criterion; changes nothing. `role` marks which the role may fire."""
        when = to_utc(at)
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
        when = to_utc(at)
        with self.store.read() as tx:
            enrollment, family = self._resolve(
                tx, patient, pathway, for_write=False, at=None if at is None else when
            )
            return self._status(tx, enrollment, family, when, role=None)

    def _status(
        self, tx: Tx, enrollment: Enrollment, family: list[Enrollment], when: datetime, role: str | None
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
            **self._timing(workflow, enrollment, when),
        )

    @staticmethod
    def _timing(workflow: Workflow, enrollment: Enrollment, when: datetime) -> dict[str, Any]:
        state = workflow.state(enrollment.state)
        days = max(0, days_between(enrollment.entered_state_at, when)) if enrollment.is_open else 0
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
        when = None if at is None else to_utc(at)
        with self.store.read() as tx:
            enrollment, _ = self._resolve(tx, patient, pathway, for_write=False, at=when)
            found = tx.events_of([enrollment.id])
        return found if when is None else [e for e in found if e.effective_at <= when]

    def observations(
        self, patient: str, *, pathway: str | None = None, kind: str | None = None, at: When = None
    ) -> list[Observation]:
        """The enrollment's observations, corrections included (marked entered-in-error);
        with `at`, of the episode that stood then."""
        when = None if at is None else to_utc(at)
        with self.store.read() as tx:
            enrollment, _ = self._resolve(tx, patient, pathway, for_write=False, at=when)
            found = [self._decoded(o, enrollment) for o in tx.observations_of([enrollment.id])]
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
        when = to_utc(at)
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
            wf = self.workflow_of(e)
            result.append(
                Summary(
                    patient=e.patient,
                    name=e.display_name,
                    pathway=e.pathway,
                    version=e.pathway_version,
                    state=e.state,
                    since=e.entered_state_at,
                    **{
                        k: v
                        for k, v in self._timing(wf, e, when).items()
                        if k in ("days_in_state", "sla_days", "overdue", "open")
                    },
                )
            )
        return result
