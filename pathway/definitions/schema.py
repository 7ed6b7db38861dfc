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


_NAME_LIST = {"type": "array", "items": _NAME}
_SCORE = {
    "type": "object",
    "required": ["kind", "field"],
    "additionalProperties": False,
    "properties": {"kind": _NAME, "field": _NAME},
}
_CODING = {
    "type": "object",
    "required": ["system", "code", "display"],
    "additionalProperties": False,
    "properties": {
        "system": {"type": "string", "description": "a URL, or loinc, snomed, cpt or pathway"},
        "code": {"type": ["string", "integer"]},
        "display": {"type": "string"},
    },
}
_DAYS = {"type": "integer", "minimum": 0, "maximum": 3650}


def _section(description: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


SECTIONS: dict[str, Any] = {
    "rtt": _section(
        "referral to treatment: where the clock starts, what stops it, the standard",
        ["start"],
        {
            "start": _NAME,
            "stop_triggers": _NAME_LIST,
            "stop_states": _NAME_LIST,
            "standard_weeks": {"type": "integer", "minimum": 1, "maximum": 520},
            "target_pct": {"type": "number", "minimum": 0, "maximum": 100},
            "at_risk_weeks": {"type": "integer", "minimum": 0, "maximum": 520},
        },
    ),
    "outcome": _section(
        "how a treatment's outcome is judged and reported",
        ["treatment", "measure", "baseline", "success_relief_pct", "window_days"],
        {
            "treatment": _NAME,
            "repeat": _NAME,
            "measure": _SCORE,
            "baseline": _SCORE,
            "success_relief_pct": {"type": "number", "minimum": 0, "maximum": 100},
            "window_days": {"type": "array", "items": _DAYS, "minItems": 2, "maxItems": 2},
            "target_day": _DAYS,
            "label": {"type": "string"},
            "secondary": _section(
                "a second score reported beside the outcome",
                ["field"],
                {
                    "field": _NAME,
                    "baseline_field": _NAME,
                    "label": {"type": "string"},
                    "meaningful_change": {"type": "number", "minimum": 0},
                },
            ),
        },
    ),
    "follow_up": _section(
        "the follow-up schedule the worklist keeps",
        ["after", "kind", "months"],
        {
            "after": _NAME,
            "kind": _NAME,
            "months": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 600}},
            "in_states": _NAME_LIST,
            "due_days_before": {"type": "integer", "minimum": 0, "maximum": 365},
            "due_days_after": {"type": "integer", "minimum": 0, "maximum": 365},
        },
    ),
    "worklist": _section(
        "what the worklist treats as routine (default: the planned states)",
        [],
        {"routine": _NAME_LIST},
    ),
    "fhir": _section(
        "what FHIR export sends: scores as Observations, kinds as Procedures",
        [],
        {
            "scores": {"type": "object", "additionalProperties": _NAME_LIST},
            "codes": {"type": "object", "additionalProperties": _CODING},
            "procedures": {
                "type": "object",
                "additionalProperties": _section(
                    "one observation kind as a Procedure",
                    ["text"],
                    {
                        "text": {"type": "string"},
                        "code": _CODING,
                        "add_on": _CODING,
                        "laterality": _NAME,
                        "body_site": {"type": "string", "description": "text with {level} and {side}"},
                        "performed_by": {
                            "type": "string",
                            "description": "the trigger whose success that day means it was done",
                        },
                    },
                ),
            },
        },
    ),
    "simulation": _section(
        "the journey `pathway simulate` draws", ["journey"], {"journey": {"type": "string"}}
    ),
    "reopen": _section(
        "a closed episode may be reopened: the closing event is voided (reason required)",
        ["trigger"],
        {
            "trigger": {"type": "string", "description": "the trigger that reopens (its own name)"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        },
    ),
}


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow file."""
    schema = _core()
    schema["properties"].update(SECTIONS)
    return schema


def _core() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pathway.invalid/schema/workflow.json",
        "title": "pathway workflow definition",
        "type": "object",
        "required": ["id", "version", "roles", "states", "transitions"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
            "version": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "default": {"type": "boolean", "description": "the pathway commands use when none is named"},
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
                            "description": "time here is planned care (after a treatment), not "
                            "waiting: reports do not name it as the bottleneck",
                        },
                        "optional": {"type": "boolean", "description": "a stage patients may skip"},
                        "completed": {
                            "type": "boolean",
                            "description": "a terminal state that means care completed as planned",
                        },
                        "sla_days": {"type": "integer", "minimum": 1, "maximum": 100_000},
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
                                    "future": {
                                        "type": "boolean",
                                        "description": "a date field that may be later than the "
                                        "observation's day (a planned date)",
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    }
