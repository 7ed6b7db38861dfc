"""The outbox envelopes: one builder per message type; the bulk import's text of an
`enrollment.opened` message is exactly the builder's message as json.dumps writes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from pathway.domain import envelopes
from pathway.domain.timeutil import iso

RECORDED = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
words = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@given(
    pathway=words,
    state=words,
    actor=words,
    role=words,
    patient=words,
    message_id=words,
    enrollment=st.integers(1, 2**62),
    version=st.integers(1, 1_000_000),
    effective=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_bulk_text_of_an_opened_message_is_the_builders_message(
    pathway: str,
    state: str,
    actor: str,
    role: str,
    patient: str,
    message_id: str,
    enrollment: int,
    version: int,
    effective: datetime,
) -> None:
    many = envelopes.OpenedMany(
        pathway=pathway, version=version, state=state, recorded=RECORDED, actor=actor, role=role
    )
    mine = {
        "message_id": message_id,
        "enrollment": enrollment,
        "patient": patient,
        "effective": iso(effective) or "",
    }
    message = envelopes.opened(
        enrollment=enrollment,
        patient=patient,
        pathway=pathway,
        version=version,
        state=state,
        effective=effective,
        recorded=RECORDED,
        actor=actor,
        role=role,
        message_id=message_id,
    )
    assert many.message(**mine) == message
    assert many.text(**mine) == json.dumps(message)


def test_every_envelope_names_its_type_and_schema_version() -> None:
    message = envelopes.opened(
        enrollment=1,
        patient="P1",
        pathway="p",
        version=1,
        state="s",
        effective=RECORDED,
        recorded=RECORDED,
        actor="a",
        role="r",
    )
    assert (message["type"], message["schema_version"]) == (envelopes.OPENED, envelopes.SCHEMA_VERSION)
    assert list(message)[:3] == ["id", "type", "schema_version"]
