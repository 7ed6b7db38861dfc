"""FHIR R4B import: enroll the patient of a referral (a ServiceRequest, alone or in a Bundle
with its Patient); see `import_referral`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pathway.domain.timeutil import effective, utcnow
from pathway.errors import InvalidInput, NotFound
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
            "ServiceRequest.subject: the patient it refers to is not in the input "
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


def enroll_referral(clinic: Service, data: Any) -> tuple[Status, bool]:
    """`import_referral`, and whether it enrolled: the same referral sent again (the patient
    already enrolled in the pathway at its `authoredOn`) changes nothing and returns
    (that enrollment's status, False), as `import referrals` skips a row seen before."""
    referral = referral_of(data)
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
