"""A Bundle for a FHIR server: the export as a `transaction` of conditional creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


def as_transaction(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """`bundle` as a `transaction` Bundle of conditional creates: each entry is POSTed unless
    the server already holds a resource with its identifier (`ifNoneExist`), and the
    urn:uuid references between entries resolve to what the server created or found. Sent
    again, it creates nothing new."""
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        identifier = resource["identifier"][0]
        value = quote(str(identifier["value"]), safe="")
        query = (
            f"identifier={quote(identifier['system'], safe=':/')}|{value}"
            if identifier.get("system")
            else f"identifier={value}"
        )
        request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": query}
        entries.append({**entry, "request": request})
    return {**bundle, "type": "transaction", "entry": entries}
