"""The FHIR REST face of the clinic service (R4B): what `GET /fhir/metadata`,
`GET /fhir/Patient?identifier=`, `GET /fhir/Patient/{id}/$everything`,
`GET /fhir/EpisodeOfCare/{id}` and `POST /fhir/ServiceRequest` answer, without HTTP.

Ids: an EpisodeOfCare's id is its enrollment's id; a Patient's id is the patient's
identifier, with each character FHIR ids do not allow written `.xx` (its hex; `.` itself
is `.2e`), so the id leads back to the identifier without a lookup.
Every resource returned is validated with fhir.resources first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pathway.domain.effects import live
from pathway.errors import InvalidInput, NotFound
from pathway.interop.fhir.bundle import build_bundle, export_bundle
from pathway.interop.fhir.check import validate_bundle
from pathway.interop.fhir.referral import enroll_referral, referral_of

if TYPE_CHECKING:
    from pathway.service.engine import Service
    from pathway.service.results import Status

FHIR_VERSION = "4.3.0"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_SAFE = re.compile(r"[A-Za-z0-9\-]")


def patient_id(identifier: str) -> str:
    """The FHIR id of the patient with this identifier."""
    fhir_id = "".join(
        c if _SAFE.fullmatch(c) else "".join(f".{b:02x}" for b in c.encode()) for c in identifier
    )
    if len(fhir_id) > 64:
        raise InvalidInput("the patient's identifier is too long for a FHIR id (64 characters)")
    return fhir_id


def identifier_of(fhir_id: str) -> str:
    """The patient identifier a FHIR id stands for (NotFound for one no patient could have)."""
    if not _ID.fullmatch(fhir_id):
        raise NotFound("no patient with that id")
    raw = bytearray()
    i = 0
    while i < len(fhir_id):
        if fhir_id[i] == ".":
            try:
                raw.append(int(fhir_id[i + 1 : i + 3], 16))
            except ValueError:
                raise NotFound("no patient with that id") from None
            i += 3
        else:
            raw += fhir_id[i].encode()
            i += 1
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise NotFound("no patient with that id") from None


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    """What this server does, as a CapabilityStatement."""
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    read = [{"code": "read"}]
    data = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-03",
        "kind": "instance",
        "software": {"name": "pathway", "version": software_version},
        "implementation": {"description": "pathway clinic service", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer TOKEN (pathway tokens create) or an OIDC token"
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [{"name": "identifier", "type": "token"}],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ],
                    },
                    {"type": "EpisodeOfCare", "interaction": read},
                    {
                        "type": "ServiceRequest",
                        "interaction": [{"code": "create"}],
                        "conditionalCreate": True,
                    },
                ],
            }
        ],
    }
    CapabilityStatement.model_validate(data)
    return data


def _patient_resource(status: Status, system: str | None) -> dict[str, Any]:
    from fhir.resources.R4B.patient import Patient

    chosen = status.identifier_system or system
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id(status.patient),
        "identifier": [{"system": chosen, "value": status.patient} if chosen else {"value": status.patient}],
    }
    if status.name:
        resource["name"] = [{"text": status.name}]
    Patient.model_validate(resource)
    return resource


def search_patients(clinic: Service, identifier: str, base_url: str) -> dict[str, Any]:
    """A searchset Bundle of the patients with `identifier` (`system|value`, or `value`)."""
    system, bar, value = identifier.partition("|")
    if not bar:
        system, value = "", identifier
    if not value:
        raise InvalidInput("identifier: give system|value or value")
    matches = []
    try:
        episodes = clinic.episodes(value)
    except (NotFound, InvalidInput):
        episodes = []
    if episodes:
        latest = episodes[-1]
        default = clinic.store.settings.get("patient-system")
        known = latest.identifier_system or default
        if not system or system == known:
            matches.append(_patient_resource(latest, default))
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "entry": [
            {"fullUrl": f"{base_url}/Patient/{m['id']}", "resource": m, "search": {"mode": "match"}}
            for m in matches
        ],
    }
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    return bundle


def everything(clinic: Service, fhir_id: str) -> dict[str, Any]:
    """Patient/$everything: the export Bundle of the patient's episode (the open one, else the
    latest)."""
    bundle = export_bundle(clinic, identifier_of(fhir_id))
    return dict(bundle.model_dump(mode="json", by_alias=True, exclude_none=True))


def episode(clinic: Service, enrollment_id: str) -> tuple[str, dict[str, Any]]:
    """(patient identifier, the EpisodeOfCare of the enrollment with this id)."""
    if not (enrollment_id.isascii() and enrollment_id.isdigit()) or len(enrollment_id) > 18:
        raise NotFound("no EpisodeOfCare with that id")
    wanted = int(enrollment_id)
    found = clinic.enrollment_by_id(wanted)
    if found is None:
        raise NotFound("no EpisodeOfCare with that id")
    status = next(s for s in clinic.episodes(found.patient) if s.enrollment_id == wanted)
    return found.patient, _episode_of(clinic, status)


def _episode_of(clinic: Service, status: Status) -> dict[str, Any]:
    from fhir.resources.R4B.episodeofcare import EpisodeOfCare

    workflow = clinic.catalog.get(status.pathway, status.version)
    at = status.closed_at
    events = live(clinic.history(status.patient, pathway=status.pathway, at=at))
    observations = clinic.observations(status.patient, pathway=status.pathway, at=at)
    data = build_bundle(status, workflow, events, observations, zone=clinic.zone)
    validate_bundle(data)
    resource = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare")
    resource = {
        **resource,
        "id": str(status.enrollment_id),
        "patient": {"reference": f"Patient/{patient_id(status.patient)}"},
    }
    EpisodeOfCare.model_validate(resource)
    return resource


def create_referral(
    clinic: Service, data: Any, if_none_exist: str | None, *, actor: str, role: str
) -> tuple[bool, dict[str, Any]]:
    """POST ServiceRequest: enroll the referral (as `import fhir`) unless it was seen before
    or `if_none_exist` (`identifier=system|value`) names a referral already enrolled;
    (created, the EpisodeOfCare of the episode)."""
    if if_none_exist is not None:
        referral = referral_of(data, clinic.store.settings.get("patient-system"))
        system, value = _condition(if_none_exist)
        try:
            known = clinic.episodes(referral["patient"])
        except NotFound:
            known = []
        for status in reversed(known):
            if (
                status.referral is not None
                and status.referral[1] == value
                and (not system or status.referral[0] == system)
            ):
                return False, _episode_of(clinic, status)
    status, created = enroll_referral(clinic, data, actor=actor, role=role)
    return created, _episode_of(clinic, status)


def _condition(if_none_exist: str) -> tuple[str | None, str]:
    name, eq, token = if_none_exist.strip().partition("=")
    if name != "identifier" or not eq or not token:
        raise InvalidInput("If-None-Exist: only identifier=system|value is supported")
    system, bar, value = token.partition("|")
    return (system or None, value) if bar else (None, token)


def as_mapping(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput("expected a JSON object (a FHIR ServiceRequest or Bundle)")
    return data
