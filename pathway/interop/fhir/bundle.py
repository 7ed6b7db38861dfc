"""FHIR R4B export: one enrollment as a `collection` Bundle (or a `transaction` of
conditional creates, `as_transaction`).

Every entry has a `urn:uuid:` fullUrl derived from the enrollment (a repeated export
gives the same ids) and every reference points inside the bundle:

- Patient: the patient's identifier, with the system it was imported with (else the
  clinic's `patient-system` setting, else none), and the display name.
- EpisodeOfCare: the enrollment; its status and statusHistory follow the event log
  through `episode_status` (the mapping is in `EPISODE_STATUS_DOC`); `referralRequest`
  names the ServiceRequest it came from by its identifier.
- CarePlan: instantiates `PLAN_DEFINITION_BASE/<pathway>|<version>`; its activities
  are the Tasks.
- Task: one per stay in a state, `completed` for past stays and a terminal state
  reached, `in-progress` for the current stay.
- Procedure: one per observation of a kind the workflow's `fhir.procedures` names (its
  code, levels as bodySite, laterality as a project extension), and one per further
  level with the add-on code, `partOf` the first. A kind with `performed_by` is
  `completed` only when that trigger succeeded on the observation's day (clinic time
  zone); a refused attempt's record is `not-done`, without add-on codes.
- Observation: each score the workflow's `fhir.scores` names, with its code.

Observations marked entered-in-error are exported with status `entered-in-error`, so a
receiver can retract what it got earlier. Every resource carries the core
`workflow-episodeOfCare` extension (or is the EpisodeOfCare) pointing at the episode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from pathway.domain.declarations import Coding, ProcedureCodes
from pathway.domain.effects import live
from pathway.domain.timeutil import iso
from pathway.errors import InvalidInput
from pathway.interop.fhir.check import validate_bundle
from pathway.interop.fhir.codes import (
    BASE,
    CAREPLAN_STATUS,
    ENROLLMENT_SYSTEM,
    EPISODE_EXTENSION,
    LATERALITY,
    LATERALITY_EXTENSION,
    LEVEL_CODES,
    OBSERVATION_CATEGORY,
    OBSERVATION_SYSTEM,
    PATHWAY_CODES,
    PATIENT_SYSTEM,
    PLAN_DEFINITION_BASE,
    SNOMED,
    episode_status,
    system_url,
)
from pathway.interop.fhir.transaction import as_transaction

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

    from pathway.domain.definition import Workflow
    from pathway.domain.record import Event, Observation
    from pathway.service.engine import Service
    from pathway.service.results import Status

# Deterministic urn:uuid ids: uuid5 over this namespace and a resource key.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)


def _urn(*key: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(str(k) for k in key))}"


def _ref(url: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": url}
    if display:
        ref["display"] = display
    return ref


def _code(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _time(value: datetime) -> str:
    text = iso(value)
    assert text is not None
    return text


def _period(start: datetime, end: datetime | None) -> dict[str, str]:
    period = {"start": _time(start)}
    if end is not None:
        period["end"] = _time(end)
    return period


def _stays(events: list[Event]) -> Iterator[tuple[Event, Event | None]]:
    """(the event entering a state, the event leaving it or None), oldest first."""
    ordered = sorted(events, key=lambda e: e.seq)
    for i, event in enumerate(ordered):
        yield event, ordered[i + 1] if i + 1 < len(ordered) else None


def _status_history(workflow: Workflow, events: list[Event]) -> list[dict[str, Any]]:
    """One entry per run of consecutive stays with the same EpisodeOfCare status."""
    history: list[dict[str, Any]] = []
    for entered, left in _stays(events):
        status = episode_status(workflow, entered.to_state)
        if history and history[-1]["status"] == status:
            history[-1]["period"] = _period(entered.effective_at, left.effective_at if left else None) | {
                "start": history[-1]["period"]["start"]
            }
            continue
        history.append(
            {"status": status, "period": _period(entered.effective_at, left.effective_at if left else None)}
        )
    return history


def _level_fields(obs: Observation, workflow: Workflow) -> list[str]:
    kind = workflow.kinds.get(obs.kind)
    return [name for name, spec in (kind.fields.items() if kind else ()) if spec.type == "levels"]


def _procedures(
    obs: Observation,
    workflow: Workflow,
    codes: ProcedureCodes,
    refs: Mapping[str, str],
    key: tuple[Any, ...],
    done: bool,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Procedure of one observation of a procedure kind, and for each level after the
    first, a Procedure with the add-on code that is `partOf` it (billing codes a second
    level separately). `done`: whether it was performed (not a refused attempt's record)."""
    levels = [str(v) for name in _level_fields(obs, workflow) for v in obs.get(name, ())]
    side = str(obs.get(codes.laterality, "")) if codes.laterality else ""
    url = _urn(*key, "procedure", obs.id)
    yield url, _procedure(obs, workflow, codes, refs, codes.code, levels, side, str(obs.id), done)
    if codes.add_on is not None and done:  # nothing to bill for a procedure not done
        for n, level in enumerate(levels[1:], start=2):
            extra = _procedure(obs, workflow, codes, refs, codes.add_on, [level], side, f"{obs.id}/{n}", done)
            extra["partOf"] = [_ref(url)]
            yield _urn(*key, "procedure", obs.id, n), extra


def _procedure(
    obs: Observation,
    workflow: Workflow,
    codes: ProcedureCodes,
    refs: Mapping[str, str],
    code: Coding | None,
    levels: list[str],
    side: str,
    identifier: str,
    done: bool,
) -> dict[str, Any]:
    codings = []
    if code is not None:
        codings.append({"system": system_url(code.system), "code": code.code, "display": code.display})
    codings.append({"system": PATHWAY_CODES, "code": obs.kind, "display": codes.text})
    text = f"{codes.text} ({workflow.region})" if workflow.region else codes.text
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [{"system": OBSERVATION_SYSTEM, "value": identifier}],
        "status": "entered-in-error" if obs.entered_in_error else "completed" if done else "not-done",
        "code": {"coding": codings, "text": text},
        "subject": _ref(refs["patient"]),
        "basedOn": [_ref(refs["careplan"])],
        "performedDateTime": _time(obs.effective_at),
        "bodySite": [
            {
                "coding": [{"system": LEVEL_CODES, "code": level, "display": level}],
                "text": " ".join(codes.body_site.format(side=side, level=level).split()),
            }
            for level in levels
        ],
        "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
    }
    if side in LATERALITY:
        snomed, display = LATERALITY[side]
        resource["extension"].append(
            {"url": LATERALITY_EXTENSION, "valueCodeableConcept": _code(SNOMED, snomed, display)}
        )
    shown = set(_level_fields(obs, workflow)) | {codes.laterality}
    details = [f"{k} {_text(v)}" for k, v in obs.data.items() if k not in shown]
    notes = [{"text": ", ".join(details)}] if details else []
    if obs.entered_in_error:
        notes.append({"text": f"entered in error: {obs.error_reason or 'no reason given'}"})
    if notes:
        resource["note"] = notes
    return resource


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(iso(value)) if isinstance(value, date) else str(value)


def _scores(
    obs: Observation, workflow: Workflow, refs: Mapping[str, str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    mapping = workflow.declarations.fhir
    for name in mapping.scores.get(obs.kind, ()):
        value = obs.get(name)
        if value is None:
            continue
        code = mapping.codes[name]
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "identifier": [{"system": OBSERVATION_SYSTEM, "value": f"{obs.id}/{name}"}],
            "status": "entered-in-error" if obs.entered_in_error else "final",
            "category": [_code(OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": _code(system_url(code.system), code.code, code.display),
            "subject": _ref(refs["patient"]),
            "basedOn": [_ref(refs["careplan"])],
            "effectiveDateTime": _time(obs.effective_at),
            "issued": _time(obs.recorded_at),
            "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
        }
        if isinstance(value, int) and not isinstance(value, bool):
            resource["valueInteger"] = value
        else:
            resource["valueQuantity"] = {"value": value}
        if obs.entered_in_error:
            resource["note"] = [{"text": f"entered in error: {obs.error_reason or 'no reason given'}"}]
        yield f"{obs.id}/{name}", resource


def _referral_request(status: Status) -> dict[str, Any]:
    """EpisodeOfCare.referralRequest: the ServiceRequest the episode came from, by its
    identifier (a referral without one is known only by a hash, not sent)."""
    if status.referral is None or status.referral[1].startswith("sha256:"):
        return {}
    system, value = status.referral
    identifier = {"system": system, "value": value} if system else {"value": value}
    return {"referralRequest": [{"type": "ServiceRequest", "identifier": identifier}]}


def build_bundle(
    status: Status,
    workflow: Workflow,
    events: list[Event],
    observations: list[Observation],
    *,
    now: datetime | None = None,
    zone: tzinfo = UTC,
    patient_system: str | None = None,
) -> dict[str, Any]:
    """The Bundle of one enrollment as JSON-ready data (not yet validated or checked);
    `zone` is the clinic's (the calendar day a procedure and its event share). The
    patient's identifier has the system it came with, else `patient_system` (the clinic's
    setting), else none."""
    key = (PATIENT_SYSTEM, status.patient, "enrollment", status.enrollment_id)
    refs = {
        "patient": _urn(PATIENT_SYSTEM, status.patient),
        "episode": _urn(*key, "episode"),
        "careplan": _urn(*key, "careplan"),
    }
    entries: list[tuple[str, dict[str, Any]]] = []
    system = status.identifier_system or patient_system
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": status.patient} if system else {"value": status.patient}],
    }
    if status.name:
        patient["name"] = [{"text": status.name}]
    entries.append((refs["patient"], patient))

    current = episode_status(workflow, status.state)
    entries.append(
        (
            refs["episode"],
            {
                "resourceType": "EpisodeOfCare",
                "identifier": [{"system": ENROLLMENT_SYSTEM, "value": str(status.enrollment_id)}],
                "status": current,
                "statusHistory": _status_history(workflow, events),
                "type": [_code(PATHWAY_CODES, workflow.id, workflow.title)],
                "patient": _ref(refs["patient"]),
                "period": _period(status.opened_at, status.closed_at),
                **_referral_request(status),
            },
        )
    )

    tasks: list[tuple[str, dict[str, Any]]] = []
    for entered, left in _stays(events):
        spec = workflow.states.get(entered.to_state)
        terminal = spec is not None and spec.terminal
        done = left is not None or terminal
        end = left.effective_at if left is not None else entered.effective_at if terminal else None
        task: dict[str, Any] = {
            "resourceType": "Task",
            "identifier": [{"system": ENROLLMENT_SYSTEM, "value": f"{status.enrollment_id}/{entered.seq}"}],
            "status": "completed" if done else "in-progress",
            "businessStatus": {"text": entered.to_state},
            "intent": "plan",
            "code": _code(PATHWAY_CODES, f"stage-{entered.to_state}", f"pathway stage {entered.to_state}"),
            "basedOn": [_ref(refs["careplan"])],
            "for": _ref(refs["patient"]),
            "authoredOn": _time(entered.recorded_at),
            "executionPeriod": _period(entered.effective_at, end),
            "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
        }
        if spec is not None and spec.description:
            task["description"] = spec.description
        reason = f"{entered.trigger}: {entered.reason}" if entered.reason else entered.trigger
        task["reasonCode"] = {"text": reason}
        tasks.append((_urn(*key, "task", entered.seq), task))

    careplan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "identifier": [{"system": ENROLLMENT_SYSTEM, "value": str(status.enrollment_id)}],
        "instantiatesCanonical": [f"{PLAN_DEFINITION_BASE}/{workflow.id}|{workflow.version}"],
        "status": CAREPLAN_STATUS.get(current, "unknown"),
        "intent": "plan",
        "title": workflow.title,
        "subject": _ref(refs["patient"]),
        "period": _period(status.opened_at, status.closed_at),
        "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
    }
    if tasks:
        careplan["activity"] = [{"reference": _ref(url)} for url, _ in tasks]
    entries.append((refs["careplan"], careplan))
    entries.extend(tasks)

    procedures = workflow.declarations.fhir.procedures
    performed = {(e.trigger, e.effective_at.astimezone(zone).date()) for e in events}
    for obs in sorted(observations, key=lambda o: (o.effective_at, o.id)):
        if obs.kind in procedures:
            codes = procedures[obs.kind]
            day = obs.effective_at.astimezone(zone).date()
            done = codes.performed_by is None or (codes.performed_by, day) in performed
            entries.extend(_procedures(obs, workflow, codes, refs, key, done))
        for suffix, resource in _scores(obs, workflow, refs):
            entries.append((_urn(*key, "observation", suffix), resource))

    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _time(now or datetime.now().astimezone()),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }


BUNDLE_TYPES = ("collection", "transaction")


def export_bundle(
    clinic: Service,
    patient: str,
    *,
    pathway: str | None = None,
    now: datetime | None = None,
    type: str = "collection",
) -> Bundle:
    """The patient's enrollment (the open one, chosen by `pathway` when several; else the
    latest closed one) as a checked FHIR R4B Bundle: a `collection`, or a `transaction`
    of conditional creates for a FHIR server (`as_transaction`)."""
    if type not in BUNDLE_TYPES:
        raise InvalidInput(f"--type: {type!r} is not one of {', '.join(BUNDLE_TYPES)}")
    status = clinic.status(patient, pathway=pathway)
    workflow = clinic.catalog.get(status.pathway, status.version)
    events = live(clinic.history(patient, pathway=status.pathway))  # a voided close never happened
    observations = clinic.observations(patient, pathway=status.pathway)
    data = build_bundle(
        status,
        workflow,
        events,
        observations,
        now=now,
        zone=clinic.zone,
        patient_system=clinic.store.settings.get("patient-system"),
    )
    return validate_bundle(as_transaction(data) if type == "transaction" else data)


def export_json(
    clinic: Service,
    patient: str,
    *,
    pathway: str | None = None,
    now: datetime | None = None,
    type: str = "collection",
) -> str:
    """`export_bundle` as indented JSON text."""
    bundle = export_bundle(clinic, patient, pathway=pathway, now=now, type=type)
    return bundle.model_dump_json(by_alias=True, exclude_none=True, indent=2)


# --- import ------------------------------------------------------------------------------
