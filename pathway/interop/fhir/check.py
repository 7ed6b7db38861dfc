"""What fhir.resources does not check in a Bundle: references resolve, fullUrls are unique,
coded statuses are in their value sets. The export refuses a bundle with problems."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pathway.interop.fhir.codes import EPISODE_STATUSES, STATUS_SETS, FhirError

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle


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
        allowed = STATUS_SETS.get(rtype)
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
        raise FhirError([pydantic_problem(e) for e in exc.errors()]) from None
    problems = check_bundle(bundle)
    if problems:
        raise FhirError(problems)
    return bundle


def shorter(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pydantic_problem(error: Mapping[str, Any]) -> str:
    parts = [p if isinstance(p, int) or str(p).isprintable() else repr(p) for p in error.get("loc", ())]
    loc = ".".join(str(p) for p in parts if p != "__root__") or "resource"
    message = " ".join(str(error.get("msg", "invalid")).split())  # some span several lines
    return f"{shorter(loc)}: {shorter(message, 160)}"
