"""Every message the engine writes matches the published envelope schema (`pathway outbox
schema`), message type by message type."""

from __future__ import annotations

import jsonschema

from pathway import Clinic
from pathway.domain import envelopes
from pathway.domain.envelope_schema import schema


def test_the_schema_is_a_valid_json_schema_naming_every_type() -> None:
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert {b["title"] for b in document["oneOf"]} == set(envelopes.TYPES)


def test_every_message_written_matches_the_schema(clinic: Clinic) -> None:
    clinic.enroll("S1", "cervical-neurotomy", at="2026-01-05")
    clinic.advance("S1", "start_evaluation", at="2026-01-06")
    obs = clinic.record("S1", "contact_attempt", {"outcome": "no_response"}, at="2026-01-07")
    clinic.correct("S1", obs.id, reason="wrong patient", at="2026-01-08")
    clinic.advance("S1", "decline", at="2026-01-09", reason="changed mind")
    clinic.reopen("S1", reason="closed in error", at="2026-01-10")
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    messages = [m["message"] for m in clinic.outbox()]
    assert {m["type"] for m in messages} >= set(envelopes.TYPES) - {envelopes.MIGRATED}
    for message in messages:
        errors = list(validator.iter_errors(message))
        assert not errors, (message["type"], [e.message for e in errors])


def test_a_message_missing_a_required_field_does_not_match() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    assert not validator.is_valid({"type": envelopes.TRANSITIONED, "schema_version": 1})
