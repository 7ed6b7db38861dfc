"""The JSON Schema of the workflow file format, so editors can check workflow files.

It describes the shape; `pathway workflows validate` also checks meaning
(unknown states and guards, unreachable states, dead ends, ambiguity).
"""

from __future__ import annotations

from typing import Any

from pathway.domain.definition import FIELD_TYPES, HELD_FROM

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_NAMES = {"oneOf": [_NAME, {"type": "array", "items": _NAME}]}
_GUARDS = {
    "type": "array",
    "items": {
        "oneOf": [
            _NAME,
            {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _NAME, "params": {"type": "object"}},
            },
        ]
    },
}


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pathway.invalid/schema/workflow.json",
        "title": "pathway workflow definition",
        "type": "object",
        "required": ["id", "version", "roles", "states", "transitions"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
            "version": {"type": "integer", "minimum": 1},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "region": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "levels": {"type": "array", "items": {"type": "string"}},
                },
            },
            "roles": {"type": "array", "items": _NAME, "minItems": 1},
            "params": {"type": "object", "description": "default guard parameters"},
            "profiles": {
                "type": "object",
                "description": "payer profiles: named parameter sets",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "default": {"type": "boolean"},
                        "description": {"type": "string"},
                        "params": {"type": "object"},
                    },
                },
            },
            "states": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": _NAME,
                "additionalProperties": {
                    "type": ["object", "null"],
                    "additionalProperties": False,
                    "properties": {
                        "initial": {"type": "boolean"},
                        "terminal": {"type": "boolean"},
                        "hold": {"type": "boolean"},
                        "planned": {
                            "type": "boolean",
                            "description": "time here is planned care (recovery, follow-up), not "
                            "waiting: reports do not name it as the bottleneck",
                        },
                        "sla_days": {"type": "integer", "minimum": 1},
                        "description": {"type": "string"},
                    },
                },
            },
            "transitions": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["trigger", "source", "dest"],
                    "additionalProperties": False,
                    "properties": {
                        "trigger": _NAME,
                        "source": {
                            "description": "a state, a list of states, or '*' for every active state",
                            "oneOf": [{"const": "*"}, *_NAMES["oneOf"]],
                        },
                        "exclude": _NAMES,
                        "dest": {
                            "description": f"a state, or {HELD_FROM} to return from a hold",
                            "oneOf": [{"const": HELD_FROM}, _NAME],
                        },
                        "roles": {"type": "array", "items": _NAME},
                        "guards": _GUARDS,
                        "reason": {"enum": ["required", "optional"]},
                        "auto": {"type": "boolean", "description": "applied by `pathway sweep`"},
                        "description": {"type": "string"},
                    },
                },
            },
            "observations": {
                "type": "object",
                "propertyNames": _NAME,
                "additionalProperties": {
                    "type": "object",
                    "required": ["fields"],
                    "additionalProperties": False,
                    "properties": {
                        "roles": {"type": "array", "items": _NAME},
                        "description": {"type": "string"},
                        "guards": _GUARDS,
                        "fields": {
                            "type": "object",
                            "minProperties": 1,
                            "propertyNames": _NAME,
                            "additionalProperties": {
                                "type": "object",
                                "required": ["type"],
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"enum": list(FIELD_TYPES)},
                                    "required": {"type": "boolean"},
                                    "min": {"type": "number"},
                                    "max": {"type": "number"},
                                    "values": {"type": "array", "items": {"type": "string"}},
                                    "description": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
