"""FHIR R4B import: enroll the patient of a referral (a ServiceRequest, alone or in a Bundle
with its Patient); see `import_referral`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pathway.domain.fields import CONTROL, LINE_BREAKS
from pathway.domain.timeutil import effective, utcnow
from pathway.errors import AlreadyEnrolled, ConcurrencyError, InvalidInput, NotFound
from pathway.interop.fhir.check import pydantic_problem, shorter
from pathway.interop.fhir.codes import ORDER_INTENTS, PATIENT_SYSTEM, PLAN_DEFINITION_BASE

if TYPE_CHECKING:
    from pathway.service.engine import Service
    from pathway.service.results import Status

_PLAN = re.compile(re.escape(PLAN_DEFINITION_BASE) + r"/(?P<id>[A-Za-z0-9._-]+)(?:\|(?P<version>[^|]+))?$")


#: How much of a value from the input a message repeats (inputs may be huge).
_SHOWN = 80


def _shown(value: Any) -> str:
    """`repr(value)`, shortened for a message."""
    return shorter(repr(value))


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


def _parse(model: Any, data: Mapping[str, Any], what: str) -> Any:
    from pydantic import ValidationError

    unknown = _unknown_resource_types(data, what)
    if unknown:
        raise InvalidInput(f"invalid FHIR {what}: " + "; ".join(unknown), unknown)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{what}.{pydantic_problem(e)}" for e in exc.errors()]
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise InvalidInput(f"invalid FHIR {what}: {shown}", problems) from None
    except RecursionError:
        raise InvalidInput(f"invalid FHIR {what}: nested too deeply") from None
    except (ValueError, TypeError, KeyError) as exc:
        # What the validator itself raises on input it cannot read at all.
        raise InvalidInput(f"invalid FHIR {what}: not a readable resource ({type(exc).__name__})") from None


def _identifier(identifiers: Any, where: str, systems: tuple[str, ...]) -> tuple[str | None, str]:
    """(system, value) of the patient's identifier: the one with the first of `systems` (the
    clinic's patient-system setting, then this project's), else the only one there is."""
    given = [(i.get("system"), i.get("value")) for i in identifiers or () if isinstance(i, Mapping)]
    values: list[tuple[str | None, str]] = [
        (s if isinstance(s, str) and s else None, v) for s, v in given if isinstance(v, str) and v
    ]
    for system in systems:
        ours = [v for s, v in values if s == system]
        if ours:
            return _kept(system, ours[0], where)
    if len(values) == 1:
        return _kept(values[0][0], values[0][1], where)
    expected = " or ".join(systems)
    if not values:
        raise InvalidInput(f"{where}: the patient has no identifier (expected system {expected})")
    raise InvalidInput(f"{where}: the patient has {len(values)} identifiers and none with system {expected}")


def _kept(system: str | None, value: str, where: str) -> tuple[str | None, str]:
    """An identifier as it is stored: one line of printable text, a system of 255 characters
    at most (the value is checked as any patient identifier is)."""
    if system is not None and (len(system) > 255 or CONTROL.search(system) or LINE_BREAKS.search(system)):
        raise InvalidInput(f"{where}.system: expected a URI of at most 255 printable characters")
    return system, value


def _referral_key(request: Mapping[str, Any]) -> tuple[str | None, str]:
    """What names the referral: the ServiceRequest's first identifier (system, value), or
    for one without, (None, "sha256:" + a hash of its content): sent again, it is the same."""
    for given in request.get("identifier") or ():
        value = given.get("value") if isinstance(given, Mapping) else None
        if isinstance(value, str) and value:
            system = given.get("system") if isinstance(given.get("system"), str) else None
            where = "ServiceRequest.identifier"
            if len(value) > 255 or CONTROL.search(value) or LINE_BREAKS.search(value):
                raise InvalidInput(f"{where}.value: expected at most 255 printable characters on one line")
            return _kept(system or None, value, where)
    content = {k: v for k, v in request.items() if k not in ("meta", "text")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return None, "sha256:" + hashlib.sha256(text.encode()).hexdigest()


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
            "ServiceRequest.subject: the patient it refers to is not in the input "
            "(include the Patient, or give subject.identifier)"
        )
    return request, patient


def referral_of(data: Any, patient_system: str | None = None) -> dict[str, Any]:
    """What a referral asks for: `patient` and its `system`, `pathway`, `at` (authoredOn or
    None), `name` and `referral` (what names it: see `_referral_key`). `patient_system`
    (the clinic's setting) is the identifier system looked for first.

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
    systems = tuple(dict.fromkeys(s for s in (patient_system, PATIENT_SYSTEM) if s))
    if patient is not None:
        system, identifier = _identifier(patient.get("identifier"), "Patient.identifier", systems)
    else:
        system, identifier = _identifier(
            [(request.get("subject") or {}).get("identifier")], "ServiceRequest.subject.identifier", systems
        )
    pathway = None
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
        "system": system,
        "referral": _referral_key(request),
        "pathway": pathway,
        "versions": versions,
        "at": effective(authored, utcnow(), name="ServiceRequest.authoredOn") if authored else None,
        "name": _name(patient),
    }


def import_referral(clinic: Service, data: Any) -> Status:
    """Enroll the patient of a FHIR referral (parsed JSON) and return the enrollment's status.

    The input is a ServiceRequest (its subject a contained Patient or a Reference with an
    identifier) or a Bundle with one ServiceRequest and its Patient. The patient is named
    by the identifier with system `PATIENT_SYSTEM` (or its only identifier); the pathway by
    `instantiatesCanonical` `PLAN_DEFINITION_BASE/<id>[|<version>]` (default: the
    pathway whose workflow file says `default: true`; enrollment is always on the latest
    version); the referral time
    by `authoredOn` (default now). Only `active` ServiceRequests are accepted."""
    return enroll_referral(clinic, data)[0]


def enroll_referral(
    clinic: Service, data: Any, *, actor: str | None = None, role: str | None = None
) -> tuple[Status, bool]:
    """`import_referral`, and whether it enrolled: the same referral sent again changes
    nothing and returns (that enrollment's status, False), as `import referrals` skips a row
    seen before. The same referral is one with the same ServiceRequest identifier (or, for
    one without, the same content); a different identifier is a different referral.

    The patient's identifier system and the referral's identifier are kept (FHIR export
    gives them back). Two imports of one referral at the same moment enroll once."""
    referral = referral_of(data, clinic.store.settings.get("patient-system"))
    if referral["pathway"] is None:
        referral["pathway"] = clinic.catalog.default().id
    for version in referral["versions"]:
        try:
            clinic.catalog.get(referral["pathway"], int(version))
        except (ValueError, NotFound):
            known = ", ".join(map(str, clinic.catalog.versions(referral["pathway"])))
            raise InvalidInput(
                f"ServiceRequest.instantiatesCanonical: {referral['pathway']} has no version "
                f"{_shown(version)} here (versions: {known})"
            ) from None
    for attempt in (1, 2):
        seen = _seen(clinic, referral)
        if seen is not None:
            return seen, False
        try:
            status = clinic.enroll(
                referral["patient"],
                referral["pathway"],
                name=referral["name"],
                at=referral["at"],
                identifier_system=referral["system"],
                referral=referral["referral"],
                actor=actor,
                role=role,
            )
            return status, True
        except (AlreadyEnrolled, ConcurrencyError):
            if attempt == 2:  # another import of this referral may have enrolled it meanwhile
                raise
    raise AssertionError("unreachable")


def _seen(clinic: Service, referral: Mapping[str, Any]) -> Status | None:
    """The patient's episode in the pathway that came from this referral, if there is one:
    one stored with its identifier, or (imported before identifiers were kept) one that
    began at its authoredOn."""
    try:
        episodes = clinic.episodes(referral["patient"], pathway=referral["pathway"])
    except NotFound:
        return None
    for episode in reversed(episodes):
        if episode.referral == referral["referral"]:
            return episode
        if episode.referral is None and referral["at"] is not None and episode.opened_at == referral["at"]:
            return episode
    return None


def import_file(clinic: Service, path: str | Path) -> Status:
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
        detail = "a number has too many digits" if "digits" in str(exc) else type(exc).__name__
        raise InvalidInput(f"{path}: not valid JSON: {detail}") from None
    return data
