"""The outbox envelopes: one builder per message type, the only place their shape is written.

Every committed change writes one message in the same transaction (`pathway outbox`),
built here, whichever path made the change (a command, a staged batch, a bulk
import). Receivers read `schema_version` (see `pathway outbox schema`) and
deduplicate on `id`.
"""

from __future__ import annotations

import json
import uuid
from json.encoder import encode_basestring_ascii as _quote  # what json.dumps writes for a str
from typing import TYPE_CHECKING, Any, ClassVar

from pathway.domain.timeutil import iso

if TYPE_CHECKING:
    from datetime import datetime

    from pathway.domain.record import Enrollment

#: The envelope's version: raised when a field changes meaning or goes (adding one does not).
SCHEMA_VERSION = 1

OPENED = "enrollment.opened"
TRANSITIONED = "enrollment.transitioned"
MIGRATED = "enrollment.migrated"
RECORDED = "observation.recorded"
CORRECTED = "observation.corrected"
REOPENED = "enrollment.reopened"
TYPES = (OPENED, TRANSITIONED, MIGRATED, RECORDED, CORRECTED, REOPENED)


def _envelope(
    type_: str,
    *,
    enrollment: int,
    patient: str,
    pathway: str,
    version: int,
    body: dict[str, Any],
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
    message_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": message_id or str(uuid.uuid4()),
        "type": type_,
        "schema_version": SCHEMA_VERSION,
        "enrollment": enrollment,
        "patient": patient,
        "pathway": pathway,
        "pathway_version": version,
        **body,
        "effective_at": iso(effective),
        "recorded_at": iso(recorded),
        "actor": actor,
        "role": role,
    }


def _of(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "enrollment": enrollment.id,
        "patient": enrollment.patient,
        "pathway": enrollment.pathway,
        "version": enrollment.pathway_version,
    }


def opened(
    *,
    enrollment: int,
    patient: str,
    pathway: str,
    version: int,
    state: str,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A patient enrolled: the enrollment opened in its initial `state`."""
    return _envelope(
        OPENED,
        enrollment=enrollment,
        patient=patient,
        pathway=pathway,
        version=version,
        body={"trigger": "enroll", "from": None, "to": state},
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
        message_id=message_id,
    )


def transitioned(
    enrollment: Enrollment,
    *,
    trigger: str,
    to_state: str,
    seq: int,
    reason: str | None,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    """A trigger fired: the enrollment (as it was before) moved to `to_state`."""
    body = {"trigger": trigger, "from": enrollment.state, "to": to_state, "seq": seq, "reason": reason}
    return _envelope(
        TRANSITIONED,
        **_of(enrollment),
        body=body,
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
    )


def reopened(
    enrollment: Enrollment,
    *,
    trigger: str,
    to_state: str,
    seq: int,
    voids: int,
    reason: str,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    """A closed enrollment (as it was, closed) reopened in `to_state`: the closing event
    `voids` (its seq) is void, as if the close had never happened."""
    body = {
        "trigger": trigger,
        "from": enrollment.state,
        "to": to_state,
        "seq": seq,
        "voids": voids,
        "reason": reason,
    }
    return _envelope(
        REOPENED,
        **_of(enrollment),
        body=body,
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
    )


def migrated(
    enrollment: Enrollment,
    *,
    to_version: int,
    seq: int,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    """The enrollment moved to another version of its workflow (the envelope names the new one)."""
    state = enrollment.state
    body = {
        "trigger": "migrate",
        "from": state,
        "to": state,
        "seq": seq,
        "from_version": enrollment.pathway_version,
        "to_version": to_version,
    }
    return _envelope(
        MIGRATED,
        **{**_of(enrollment), "version": to_version},
        body=body,
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
    )


def recorded(
    enrollment: Enrollment,
    *,
    observation: int,
    kind: str,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    """An observation was recorded (its values are not in the message: read them by id)."""
    return _envelope(
        RECORDED,
        **_of(enrollment),
        body={"observation": {"id": observation, "kind": kind}},
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
    )


def corrected(
    enrollment: Enrollment,
    *,
    observation: int,
    kind: str,
    reason: str,
    effective: datetime,
    recorded: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    """An observation was marked entered-in-error."""
    return _envelope(
        CORRECTED,
        **_of(enrollment),
        body={"observation": {"id": observation, "kind": kind}, "reason": reason},
        effective=effective,
        recorded=recorded,
        actor=actor,
        role=role,
    )


class OpenedMany:
    """`opened(...)` for many enrollments that share a pathway, version, state, recorded
    time, actor and role (bulk import makes one per referral): the builder's message is
    made once with placeholders, and each enrollment's message is a copy with its own
    id, number, patient and effective time; its JSON text is cut around the placeholders
    once, so `text` needs no json.dumps. A test checks both against the builder."""

    _HOLES: ClassVar[dict[str, str]] = {
        "id": "\x00m",
        "enrollment": "\x00n",
        "patient": "\x00p",
        "effective_at": "\x00e",
    }

    def __init__(
        self, *, pathway: str, version: int, state: str, recorded: datetime, actor: str, role: str
    ) -> None:
        holes = self._HOLES
        self._sample = opened(
            enrollment=0,
            patient=holes["patient"],
            pathway=pathway,
            version=version,
            state=state,
            effective=recorded,
            recorded=recorded,
            actor=actor,
            role=role,
            message_id=holes["id"],
        )
        sample = {**self._sample, "enrollment": holes["enrollment"], "effective_at": holes["effective_at"]}
        text = json.dumps(sample)
        marks = [(text.index(json.dumps(mark)), json.dumps(mark), name) for name, mark in holes.items()]
        marks.sort()
        # The builder writes id, enrollment, patient and effective_at in this order.
        assert [name for _, _, name in marks] == ["id", "enrollment", "patient", "effective_at"], marks
        pieces, at = [], 0
        for start, mark, _ in marks:
            pieces.append(text[at:start])
            at = start + len(mark)
        pieces.append(text[at:])
        self._pieces = tuple(pieces)

    def message(self, *, message_id: str, enrollment: int, patient: str, effective: str) -> dict[str, Any]:
        """The envelope; `effective` is the ISO text of the effective time (`iso`)."""
        found = self._sample.copy()
        found["id"], found["enrollment"], found["patient"], found["effective_at"] = (
            message_id,
            enrollment,
            patient,
            effective,
        )
        return found

    def text(self, *, message_id: str, enrollment: int, patient: str, effective: str) -> str:
        """`json.dumps` of `message(...)`, without building it."""
        a, b, c, d, e = self._pieces
        return f"{a}{_quote(message_id)}{b}{enrollment}{c}{_quote(patient)}{d}{_quote(effective)}{e}"
