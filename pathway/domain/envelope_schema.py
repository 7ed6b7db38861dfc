"""The JSON Schema (2020-12) of the outbox envelopes `envelopes.py` builds: what a receiver
may rely on, for every message type (`pathway outbox schema`, `GET /v1/schemas/outbox`).

A test validates every message the engine writes against it, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from pathway.domain import envelopes

_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 in UTC (Z)"}
_TEXT_OR_NULL = {"type": ["string", "null"]}

_COMMON: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid", "description": "Unique per message: deduplicate on it."},
    "type": {"enum": list(envelopes.TYPES)},
    "schema_version": {"const": envelopes.SCHEMA_VERSION},
    "enrollment": {"type": "integer", "description": "The enrollment's id in this database."},
    "patient": {"type": "string", "description": "The patient's identifier (e.g. an MRN)."},
    "pathway": {"type": "string"},
    "pathway_version": {"type": "integer", "minimum": 1},
    "effective_at": {**_TIME, "description": "When it happened (clinically)."},
    "recorded_at": {**_TIME, "description": "When it was written."},
    "actor": {"type": "string"},
    "role": {"type": "string"},
}
_CHANGE = {
    "trigger": {"type": "string"},
    "from": _TEXT_OR_NULL,
    "to": {"type": "string"},
    "seq": {"type": "integer", "minimum": 1, "description": "The event's place in the enrollment's log."},
}
_OBSERVATION = {
    "observation": {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {"id": {"type": "integer"}, "kind": {"type": "string"}},
    }
}

#: type -> (description, its own properties, which of them are required)
_TYPES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    envelopes.OPENED: (
        "A patient was enrolled: a new episode opened in its initial state.",
        {"trigger": {"const": "enroll"}, "from": {"type": "null"}, "to": {"type": "string"}},
        ["trigger", "from", "to"],
    ),
    envelopes.TRANSITIONED: (
        "A trigger fired: the enrollment moved from one state to another.",
        {**_CHANGE, "reason": _TEXT_OR_NULL},
        ["trigger", "from", "to", "seq"],
    ),
    envelopes.REOPENED: (
        "A close entered in error was voided: the episode is open again in the state it was in.",
        {
            **_CHANGE,
            "voids": {"type": "integer", "description": "seq of the voided close"},
            "reason": _TEXT_OR_NULL,
        },
        ["trigger", "from", "to", "seq", "voids", "reason"],
    ),
    envelopes.MIGRATED: (
        "The enrollment moved to another version of its workflow (its state unchanged).",
        {**_CHANGE, "from_version": {"type": "integer"}, "to_version": {"type": "integer"}},
        ["trigger", "from", "to", "seq", "from_version", "to_version"],
    ),
    envelopes.RECORDED: (
        "An observation was recorded (its values: GET .../observations; not in the message).",
        _OBSERVATION,
        ["observation"],
    ),
    envelopes.CORRECTED: (
        "An observation was marked entered in error, with the reason.",
        {**_OBSERVATION, "reason": {"type": "string"}},
        ["observation", "reason"],
    ),
}


def schema() -> dict[str, Any]:
    """The envelope schema: one branch per message type, selected by `type`."""
    branches = []
    for name, (description, own, required) in _TYPES.items():
        branches.append(
            {
                "title": name,
                "description": description,
                "type": "object",
                "properties": {**_COMMON, **own, "type": {"const": name}},
                "required": [*_COMMON, *required],
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:pathway:outbox:envelope:v{envelopes.SCHEMA_VERSION}",
        "title": "pathway outbox envelope",
        "description": (
            "One message per committed change, delivered at least once, in order per enrollment. "
            "schema_version rises only when a field changes meaning or goes; new fields may appear."
        ),
        "oneOf": branches,
    }
