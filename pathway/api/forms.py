"""Form inputs made from an observation kind's field definitions (type, enum values, range,
required), and the values a submitted form gives back, as the CLI's FIELD=VALUE text: the
engine checks them exactly as it checks the command line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pathway.domain.definition import KindSpec


def field_inputs(spec: KindSpec, previous: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """One input per field: its HTML control, limits and help text (the allowed values in
    words), filled with what was sent before when a form comes back with errors."""
    found = []
    for field in spec.fields.values():
        sent = list((previous or {}).get(field.name) or [])
        control: dict[str, Any] = {
            "name": field.name,
            "label": field.name.replace("_", " "),
            "required": field.required,
            "help": field.description or field.describe(),
            "value": sent[0] if sent else "",
            "chosen": sent,
            "options": list(field.values),
            "min": None if field.minimum is None else _plain(field.minimum),
            "max": None if field.maximum is None else _plain(field.maximum),
        }
        if field.type in ("enum",):
            control["control"] = "select"
        elif field.type in ("levels", "list"):
            control["control"] = "multiple"
        elif field.type == "bool":
            control["control"] = "select"
            control["options"] = ["true", "false"]
        elif field.type == "int":
            control.update(control="input", input="number", step="1")
        elif field.type == "number":
            control.update(control="input", input="number", step="any")
        elif field.type == "date":
            control.update(control="input", input="date")
        else:
            control.update(control="input", input="text")
        found.append(control)
    return found


def form_values(spec: KindSpec, form: Mapping[str, list[str]]) -> dict[str, str]:
    """The submitted fields as text values (several choices joined with commas); a field
    left empty is left out, so the engine names it when it is required."""
    values: dict[str, str] = {}
    for field in spec.fields.values():
        sent = [v.strip() for v in form.get(field.name) or [] if v.strip()]
        if field.type in ("levels", "list"):
            if sent or field.type == "list":
                values[field.name] = ",".join(sent)
        elif sent:
            values[field.name] = sent[0]
    return values


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
