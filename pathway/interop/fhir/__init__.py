"""FHIR R4B: export one enrollment as a Bundle, import a referral (ServiceRequest).

Export (`export_bundle`, `export_json`) builds a `collection` Bundle whose entries
all have `urn:uuid:` fullUrls (derived from the enrollment, so a repeated export
gives the same ids) and whose references all point inside the bundle:

- Patient: identifier `PATIENT_SYSTEM` | the patient's identifier, and the display name.
- EpisodeOfCare: the enrollment. Its status and statusHistory follow the event log
  through `episode_status` (the mapping is in `EPISODE_STATUS_DOC`).
- CarePlan: instantiates `PLAN_DEFINITION_BASE/<pathway>|<version>`; its activities
  are the Tasks.
- Task: one per stay in a state (from one event to the next): `completed` for past
  stays and for a terminal state reached, `in-progress` for the current stay.
- Procedure: one per `block` and `ablation` observation (CPT code for the region where
  one exists, spinal levels as bodySite, laterality as a project extension).
- Observation: NRS, NDI and PGIC from `baseline` and `follow_up` observations.

Observations marked entered-in-error are exported with status `entered-in-error`
(Procedure and Observation alike), so a receiver can retract what it got earlier.

Every resource carries the core `workflow-episodeOfCare` extension (or the
EpisodeOfCare itself) pointing at the episode. `check_bundle` verifies what
fhir.resources does not (references resolve, coded statuses are valid) and the
export refuses a bundle it finds problems in.

Import (`import_referral`, `import_file`) reads a ServiceRequest, or a Bundle with one
ServiceRequest and its Patient, and enrolls the patient; see `import_referral`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pathway.domain.timeutil import effective, utcnow
from pathway.errors import InvalidInput, NotFound, PathwayError
from pathway.service.results import Status, iso

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

    from pathway.clinic import Clinic
    from pathway.domain.definition import Workflow
    from pathway.domain.record import Event, Observation

BASE = "https://pathway.invalid/fhir"
PATIENT_SYSTEM = f"{BASE}/patient-id"
ENROLLMENT_SYSTEM = f"{BASE}/enrollment-id"
OBSERVATION_SYSTEM = f"{BASE}/observation-id"
PLAN_DEFINITION_BASE = f"{BASE}/PlanDefinition"
PATHWAY_CODES = f"{BASE}/CodeSystem/pathway"
LEVEL_CODES = f"{BASE}/CodeSystem/spinal-level"
LATERALITY_EXTENSION = f"{BASE}/StructureDefinition/laterality"
EPISODE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"
DEFAULT_PATHWAY = "cervical-neurotomy"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# Deterministic urn:uuid ids: uuid5 over this namespace and a resource key.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)

# ServiceRequest.intent codes that make it an order (a referral), not a proposal or plan.
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")

# Value sets of the statuses `check_bundle` verifies (FHIR R4B required bindings).
EPISODE_STATUSES = frozenset(
    {"planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error"}
)
TASK_STATUSES = frozenset(
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)
PROCEDURE_STATUSES = frozenset(
    {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    }
)
OBSERVATION_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
CAREPLAN_STATUSES = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
_STATUS_SETS: Mapping[str, frozenset[str]] = {
    "EpisodeOfCare": EPISODE_STATUSES,
    "Task": TASK_STATUSES,
    "Procedure": PROCEDURE_STATUSES,
    "Observation": OBSERVATION_STATUSES,
    "CarePlan": CAREPLAN_STATUSES,
}

EPISODE_STATUS_DOC = """\
pathway state                                   -> EpisodeOfCare.status
the initial state (referred)                    -> waitlist   (referral received, care not started)
on_hold (any state marked hold)                 -> onhold
other non-terminal states (evaluation ... follow_up) -> active
discharged                                      -> finished   (care completed as planned)
other terminal states (ineligible, declined,
  lost_to_follow_up, referred_elsewhere)        -> cancelled  (ended outside the planned workflow)
"""

CAREPLAN_STATUS = {
    "waitlist": "active",
    "active": "active",
    "onhold": "on-hold",
    "finished": "completed",
    "cancelled": "revoked",
}

# Scores: LOINC where a code for the score exists; otherwise the project code system.
SCORE_CODES: Mapping[str, tuple[str, str, str]] = {
    "nrs": (LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
    "ndi": (PATHWAY_CODES, "ndi-total", "Neck Disability Index raw total score (0-50)"),
    "pgic": (PATHWAY_CODES, "pgic", "Patient Global Impression of Change (1-7)"),
}
SCORE_KINDS: Mapping[str, tuple[str, ...]] = {"baseline": ("nrs", "ndi"), "follow_up": ("nrs", "ndi", "pgic")}
# The `ndi` field is the Neck Disability Index only in a cervical pathway; elsewhere (the
# lumbar pathway's field is "disability index, raw score 0-50") it is not claimed as one.
REGION_SCORE_CODES: Mapping[tuple[str, str], tuple[str, str, str]] = {
    ("lumbar", "ndi"): (PATHWAY_CODES, "disability-index-total", "Disability index raw total score (0-50)"),
}

# CPT codes for the first level of a session (the add-on codes for further levels,
# 64491/64492, 64494/64495, 64634, 64636, are billing detail left out).
CPT_CODES: Mapping[tuple[str, str], tuple[str, str]] = {
    ("block", "cervical"): ("64490", "Facet joint nerve injection, cervical/thoracic, single level"),
    ("block", "lumbar"): ("64493", "Facet joint nerve injection, lumbar/sacral, single level"),
    ("ablation", "cervical"): ("64633", "Facet joint nerve destruction, cervical/thoracic, single joint"),
    ("ablation", "lumbar"): ("64635", "Facet joint nerve destruction, lumbar/sacral, single joint"),
}
PROCEDURE_TEXT = {
    "block": "Diagnostic medial branch block",
    "ablation": "Medial branch radiofrequency neurotomy",
}
LATERALITY: Mapping[str, tuple[str, str]] = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "bilateral": ("51440002", "Right and left"),
}


class FhirError(PathwayError):
    """Raised when an export would produce a bundle that `check_bundle` rejects (a bug)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid FHIR bundle: " + "; ".join(problems))
        self.problems = tuple(problems)


# --- export ------------------------------------------------------------------------------


def episode_status(workflow: Workflow, state: str) -> str:
    """EpisodeOfCare.status for a pathway state (see `EPISODE_STATUS_DOC`)."""
    spec = workflow.states.get(state)
    if spec is None:
        return "active"
    if spec.terminal:
        return "finished" if state == "discharged" else "cancelled"
    if spec.hold:
        return "onhold"
    if spec.initial or state == workflow.initial:
        return "waitlist"
    return "active"


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


def _procedure(obs: Observation, workflow: Workflow, refs: Mapping[str, str]) -> dict[str, Any]:
    codings = []
    cpt = CPT_CODES.get((obs.kind, workflow.region))
    if cpt is not None:
        codings.append({"system": CPT, "code": cpt[0], "display": cpt[1]})
    text = f"{PROCEDURE_TEXT[obs.kind]} ({workflow.region or 'spine'})"
    codings.append({"system": PATHWAY_CODES, "code": obs.kind, "display": PROCEDURE_TEXT[obs.kind]})
    side = str(obs.get("side", ""))
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [{"system": OBSERVATION_SYSTEM, "value": str(obs.id)}],
        "status": "entered-in-error" if obs.entered_in_error else "completed",
        "code": {"coding": codings, "text": text},
        "subject": _ref(refs["patient"]),
        "basedOn": [_ref(refs["careplan"])],
        "performedDateTime": _time(obs.effective_at),
        "bodySite": [
            {
                "coding": [{"system": LEVEL_CODES, "code": str(level), "display": f"{level} facet joint"}],
                "text": f"{side} {level} facet joint medial branches".strip(),
            }
            for level in obs.get("levels", ())
        ],
        "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
    }
    if side in LATERALITY:
        code, display = LATERALITY[side]
        resource["extension"].append(
            {"url": LATERALITY_EXTENSION, "valueCodeableConcept": _code(SNOMED, code, display)}
        )
    details = [f"{k} {obs.get(k)}" for k in ("agent", "technique", "guidance", "sedation") if k in obs.data]
    if obs.kind == "block" and "pre_nrs" in obs.data:
        details.append(f"NRS {obs.get('pre_nrs')} -> {obs.get('post_nrs')} for {obs.get('relief_hours')} h")
    notes = [{"text": ", ".join(details)}] if details else []
    if obs.entered_in_error:
        notes.append({"text": f"entered in error: {obs.error_reason or 'no reason given'}"})
    if notes:
        resource["note"] = notes
    return resource


def _scores(
    obs: Observation, refs: Mapping[str, str], region: str | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in SCORE_KINDS.get(obs.kind, ()):
        value = obs.get(name)
        if value is None:
            continue
        system, code, display = REGION_SCORE_CODES.get((region or "", name)) or SCORE_CODES[name]
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "identifier": [{"system": OBSERVATION_SYSTEM, "value": f"{obs.id}/{name}"}],
            "status": "entered-in-error" if obs.entered_in_error else "final",
            "category": [_code(OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": _code(system, code, display),
            "subject": _ref(refs["patient"]),
            "basedOn": [_ref(refs["careplan"])],
            "effectiveDateTime": _time(obs.effective_at),
            "issued": _time(obs.recorded_at),
            "valueInteger": int(value),
            "extension": [{"url": EPISODE_EXTENSION, "valueReference": _ref(refs["episode"])}],
        }
        if obs.entered_in_error:
            resource["note"] = [{"text": f"entered in error: {obs.error_reason or 'no reason given'}"}]
        yield f"{obs.id}/{name}", resource


def build_bundle(
    status: Status,
    workflow: Workflow,
    events: list[Event],
    observations: list[Observation],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Bundle of one enrollment as JSON-ready data (not yet validated or checked)."""
    key = (PATIENT_SYSTEM, status.patient, "enrollment", status.enrollment_id)
    refs = {
        "patient": _urn(PATIENT_SYSTEM, status.patient),
        "episode": _urn(*key, "episode"),
        "careplan": _urn(*key, "careplan"),
    }
    entries: list[tuple[str, dict[str, Any]]] = []
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": PATIENT_SYSTEM, "value": status.patient}],
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

    for obs in sorted(observations, key=lambda o: (o.effective_at, o.id)):
        if obs.kind in PROCEDURE_TEXT:
            entries.append((_urn(*key, "procedure", obs.id), _procedure(obs, workflow, refs)))
        for suffix, resource in _scores(obs, refs, workflow.region):
            entries.append((_urn(*key, "observation", suffix), resource))

    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _time(now or datetime.now().astimezone()),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }


def _as_data(bundle: Bundle | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(bundle, Mapping):
        return bundle
    data: dict[str, Any] = json.loads(bundle.model_dump_json(by_alias=True, exclude_none=True))
    return data


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every (path, reference) under `node`."""
    if isinstance(node, Mapping):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield path, ref
        for key, value in node.items():
            yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, f"{path}[{i}]")


def check_bundle(bundle: Bundle | Mapping[str, Any]) -> list[str]:
    """What fhir.resources does not check: every problem found, each naming its entry.

    - every entry has a fullUrl, unique in the bundle;
    - every reference resolves to an entry (by fullUrl, or by `Type/id`), or is a
      local `#contained` reference;
    - EpisodeOfCare.status and statusHistory statuses, and the statuses of Task,
      Procedure, Observation and CarePlan, are codes of their value sets."""
    data = _as_data(bundle)
    problems: list[str] = []
    entries = data.get("entry") or []
    known: set[str] = set()
    for i, entry in enumerate(entries):
        url = entry.get("fullUrl")
        resource = entry.get("resource") or {}
        if not url:
            problems.append(f"entry[{i}]: no fullUrl")
        elif url in known:
            problems.append(f"entry[{i}]: fullUrl {url} is used twice")
        else:
            known.add(url)
        if resource.get("id") and resource.get("resourceType"):
            known.add(f"{resource['resourceType']}/{resource['id']}")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        rtype = resource.get("resourceType", "?")
        where = f"entry[{i}] ({rtype})"
        for path, ref in _references(resource, ""):
            if not ref.startswith("#") and ref not in known:
                problems.append(f"{where}{path}: reference {ref} does not resolve within the bundle")
        allowed = _STATUS_SETS.get(rtype)
        if allowed is not None and resource.get("status") not in allowed:
            problems.append(
                f"{where}.status: {resource.get('status')!r} is not one of {', '.join(sorted(allowed))}"
            )
        if rtype == "EpisodeOfCare":
            for j, item in enumerate(resource.get("statusHistory") or []):
                if item.get("status") not in EPISODE_STATUSES:
                    problems.append(
                        f"{where}.statusHistory[{j}].status: {item.get('status')!r} is not one of "
                        f"{', '.join(sorted(EPISODE_STATUSES))}"
                    )
    return problems


def validate_bundle(data: Mapping[str, Any]) -> Bundle:
    """Parse with fhir.resources (R4B) and run `check_bundle`; raise `FhirError` on problems."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise FhirError([_pydantic_problem(e) for e in exc.errors()]) from None
    problems = check_bundle(bundle)
    if problems:
        raise FhirError(problems)
    return bundle


def export_bundle(
    clinic: Clinic, patient: str, *, pathway: str | None = None, now: datetime | None = None
) -> Bundle:
    """The patient's enrollment (the open one, chosen by `pathway` when several; else the
    latest closed one) as a checked FHIR R4B Bundle."""
    status = clinic.status(patient, pathway=pathway)
    workflow = clinic.catalog.get(status.pathway, status.version)
    events = clinic.history(patient, pathway=status.pathway)
    observations = clinic.observations(patient, pathway=status.pathway)
    return validate_bundle(build_bundle(status, workflow, events, observations, now=now))


def export_json(
    clinic: Clinic, patient: str, *, pathway: str | None = None, now: datetime | None = None
) -> str:
    """`export_bundle` as indented JSON text."""
    bundle = export_bundle(clinic, patient, pathway=pathway, now=now)
    return bundle.model_dump_json(by_alias=True, exclude_none=True, indent=2)


# --- import ------------------------------------------------------------------------------

_PLAN = re.compile(re.escape(PLAN_DEFINITION_BASE) + r"/(?P<id>[A-Za-z0-9._-]+)(?:\|(?P<version>[^|]+))?$")


#: How much of a value from the input a message repeats (inputs may be huge).
_SHOWN = 80


def _shorter(text: str, limit: int = _SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    """`repr(value)`, shortened for a message."""
    return _shorter(repr(value))


def _unknown_resource_types(data: Any, where: str) -> list[str]:
    """Every nested `resourceType` that names no FHIR R4B resource, with its path.

    fhir.resources looks nested resources (contained, Bundle entries) up by name and fails
    with KeyError or TypeError on an unknown one; checked here first for a clear message.
    The walk keeps its own stack: a deeply nested input cannot exhaust Python's."""
    from fhir.resources.R4B import get_fhir_model_class

    problems: list[str] = []
    stack: list[tuple[str, Any]] = [(where, data)]
    while stack and len(problems) < 5:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            if path != where and "resourceType" in node:
                name = node["resourceType"]
                try:
                    known = isinstance(name, str) and get_fhir_model_class(name) is not None
                except ValueError:
                    known = False
                if not known:
                    problems.append(f"{path}.resourceType: {_shown(name)} is not a FHIR resource type")
            stack.extend((f"{path}.{key}", value) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}", value) for i, value in enumerate(node))
    return sorted(problems)


def _pydantic_problem(error: Mapping[str, Any]) -> str:
    parts = [p if isinstance(p, int) or str(p).isprintable() else repr(p) for p in error.get("loc", ())]
    loc = ".".join(str(p) for p in parts if p != "__root__") or "resource"
    message = " ".join(str(error.get("msg", "invalid")).split())  # some span several lines
    return f"{_shorter(loc)}: {_shorter(message, 160)}"


def _parse(model: Any, data: Mapping[str, Any], what: str) -> Any:
    from pydantic import ValidationError

    unknown = _unknown_resource_types(data, what)
    if unknown:
        raise InvalidInput(f"invalid FHIR {what}: " + "; ".join(unknown), unknown)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{what}.{_pydantic_problem(e)}" for e in exc.errors()]
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise InvalidInput(f"invalid FHIR {what}: {shown}", problems) from None
    except RecursionError:
        raise InvalidInput(f"invalid FHIR {what}: nested too deeply") from None
    except (ValueError, TypeError, KeyError) as exc:
        # What the validator itself raises on input it cannot read at all.
        raise InvalidInput(f"invalid FHIR {what}: not a readable resource ({_shown(str(exc))})") from None


def _identifier(identifiers: Any, where: str) -> str:
    values = [(i.get("system"), i.get("value")) for i in identifiers or () if isinstance(i, Mapping)]
    values = [(s, v) for s, v in values if isinstance(v, str) and v]
    ours = [v for s, v in values if s == PATIENT_SYSTEM]
    if ours:
        return str(ours[0])
    if len(values) == 1:
        return str(values[0][1])
    if not values:
        raise InvalidInput(f"{where}: the patient has no identifier (expected system {PATIENT_SYSTEM})")
    raise InvalidInput(
        f"{where}: the patient has {len(values)} identifiers and none with system {PATIENT_SYSTEM}"
    )


def _name(patient: Mapping[str, Any] | None) -> str | None:
    for name in (patient or {}).get("name") or ():
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or ()), name.get("family") or ""]
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text
    return None


def _referral_parts(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """(the ServiceRequest, its Patient if the input carries one), both validated."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.patient import Patient
    from fhir.resources.R4B.servicerequest import ServiceRequest

    rtype = data.get("resourceType")
    if rtype == "ServiceRequest":
        _parse(ServiceRequest, data, "ServiceRequest")
        request = data
        by_ref: dict[str, Mapping[str, Any]] = {
            f"#{c['id']}": c
            for c in request.get("contained") or ()
            if c.get("resourceType") == "Patient" and c.get("id")
        }
    elif rtype == "Bundle":
        _parse(Bundle, data, "Bundle")
        resources = [(e.get("fullUrl"), e.get("resource") or {}) for e in data.get("entry") or ()]
        requests = [r for _, r in resources if r.get("resourceType") == "ServiceRequest"]
        if len(requests) != 1:
            raise InvalidInput(f"Bundle: expected one ServiceRequest, found {len(requests)}")
        request = requests[0]
        by_ref = {}
        for url, resource in resources:
            if resource.get("resourceType") == "Patient":
                if url:
                    by_ref[url] = resource
                if resource.get("id"):
                    by_ref[f"Patient/{resource['id']}"] = resource
    else:
        raise InvalidInput(f"expected a FHIR ServiceRequest or Bundle, got resourceType {_shown(rtype)}")
    subject = request.get("subject") or {}
    patient = by_ref.get(subject.get("reference") or "")
    if patient is not None:
        _parse(Patient, patient, "Patient")
    elif subject.get("reference") and not subject.get("identifier"):
        raise InvalidInput(
            f"ServiceRequest.subject: reference {_shown(subject['reference'])} is not in the input "
            "(include the Patient, or give subject.identifier)"
        )
    return request, patient


def referral_of(data: Any) -> dict[str, Any]:
    """What a referral asks for: `patient`, `pathway`, `at` (authoredOn or None) and `name`.

    Raises `InvalidInput` for anything that is not a valid active referral."""
    if not isinstance(data, Mapping):
        raise InvalidInput("expected a JSON object (a FHIR ServiceRequest or Bundle)")
    request, patient = _referral_parts(data)
    if request.get("status") != "active":
        raise InvalidInput(
            f"ServiceRequest.status: {_shown(request.get('status'))} is not an active referral"
        )
    if request.get("intent") not in ORDER_INTENTS:
        raise InvalidInput(
            f"ServiceRequest.intent: {_shown(request.get('intent'))} is not a referral "
            f"(expected {', '.join(ORDER_INTENTS)}; a proposal or plan is not yet a referral)"
        )
    if patient is not None:
        identifier = _identifier(patient.get("identifier"), "Patient.identifier")
    else:
        identifier = _identifier(
            [(request.get("subject") or {}).get("identifier")], "ServiceRequest.subject.identifier"
        )
    pathway = DEFAULT_PATHWAY
    plans = [str(c) for c in request.get("instantiatesCanonical") or ()]
    ours = [m for m in (_PLAN.match(c) for c in plans) if m]
    if plans and not ours:
        named = ", ".join(_shown(p) for p in plans[:3]) + (
            f" and {len(plans) - 3} more" if len(plans) > 3 else ""
        )
        raise InvalidInput(
            f"ServiceRequest.instantiatesCanonical: none of {named} is a pathway "
            f"({PLAN_DEFINITION_BASE}/<id>[|<version>])"
        )
    if len({m["id"] for m in ours}) > 1:
        raise InvalidInput("ServiceRequest.instantiatesCanonical: names more than one pathway")
    if ours:
        pathway = ours[0]["id"]
    versions = sorted({m["version"] for m in ours if m["version"]})
    authored = request.get("authoredOn")
    return {
        "patient": identifier,
        "pathway": pathway,
        "versions": versions,
        "at": effective(authored, utcnow(), name="ServiceRequest.authoredOn") if authored else None,
        "name": _name(patient),
    }


def import_referral(clinic: Clinic, data: Any) -> Status:
    """Enroll the patient of a FHIR referral (parsed JSON) and return the enrollment's status.

    The input is a ServiceRequest (its subject a contained Patient or a Reference with an
    identifier) or a Bundle with one ServiceRequest and its Patient. The patient is named
    by the identifier with system `PATIENT_SYSTEM` (or its only identifier); the pathway by
    `instantiatesCanonical` `PLAN_DEFINITION_BASE/<id>[|<version>]` (default
    cervical-neurotomy; enrollment is always on the latest version); the referral time
    by `authoredOn` (default now). Only `active` ServiceRequests are accepted."""
    return enroll_referral(clinic, data)[0]


def enroll_referral(clinic: Clinic, data: Any) -> tuple[Status, bool]:
    """`import_referral`, and whether it enrolled: the same referral sent again (the patient
    already enrolled in the pathway at its `authoredOn`) changes nothing and returns
    (that enrollment's status, False), as `import referrals` skips a row seen before."""
    referral = referral_of(data)
    for version in referral["versions"]:
        try:
            clinic.catalog.get(referral["pathway"], int(version))
        except (ValueError, NotFound):
            known = ", ".join(map(str, clinic.catalog.versions(referral["pathway"])))
            raise InvalidInput(
                f"ServiceRequest.instantiatesCanonical: {referral['pathway']} has no version "
                f"{_shown(version)} here (versions: {known})"
            ) from None
    if referral["at"] is not None:
        # Seen before: the patient's latest episode in the pathway began at this referral
        # (open or since closed, as `import referrals` skips a row it has enrolled before).
        try:
            latest = clinic.status(referral["patient"], pathway=referral["pathway"])
        except NotFound:
            latest = None
        if latest is not None and latest.opened_at == referral["at"]:
            return latest, False
    status = clinic.enroll(referral["patient"], referral["pathway"], name=referral["name"], at=referral["at"])
    return status, True


def import_file(clinic: Clinic, path: str | Path) -> Status:
    """`import_referral` on a JSON file; unreadable or malformed files raise `InvalidInput`."""
    return import_referral(clinic, read_file(path))


def read_file(path: str | Path) -> Any:
    """The parsed JSON of a referral file; unreadable or malformed files raise `InvalidInput`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidInput(f"{path}: not a FHIR resource: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        detail = "a number has too many digits" if "digits" in str(exc) else _shown(str(exc))
        raise InvalidInput(f"{path}: not valid JSON: {detail}") from None
    return data
