"""The audit trail's hash chain: every change to an enrollment is an entry that carries the
hash of its own content and of the entry before it.

An enrollment's entries are its events, its observations and their corrections, in the
order they were written: each bumps the enrollment's `version`, and an entry's place
(`chain_seq`) is the version it made (the enroll event is 1). Its hash is
SHA-256 over the previous entry's hash (`GENESIS` for the first) and the entry's
canonical JSON; the enrollment keeps the latest as `chain_head`. Changing, removing or
inserting a row afterwards, even with the protective triggers off, shows when the chain
is recomputed (`pathway audit verify`): a hash no longer matches, a place is missing,
or the head is not the last entry's.

The content hashed names the patient's identifier and the pathway too, so moving an
enrollment to another patient, or rewriting an identifier, breaks its chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pathway.domain.facts import Event
from pathway.domain.timeutil import iso

GENESIS = "0" * 64


def canonical(entry: Mapping[str, Any]) -> str:
    """The text an entry is hashed as: sorted keys, no spaces, times in ISO UTC."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def link(previous: str | None, entry: Mapping[str, Any]) -> str:
    """The hash of `entry` following the entry whose hash is `previous` (None: the first)."""
    return link_text(previous, canonical(entry))


def link_text(previous: str | None, text: str) -> str:
    """`link` of an entry already in its canonical text."""
    return hashlib.sha256(f"{previous or GENESIS}\n{text}".encode()).hexdigest()


class Template:
    """`canonical(entry)` for many entries that differ only in the text fields `holes` (a
    bulk import hashes one enroll event per referral): the canonical text of `entry` with
    markers in those fields, cut around them once. A test checks it against `canonical`."""

    def __init__(self, entry: Mapping[str, Any], holes: tuple[str, ...]) -> None:
        marks = {name: f"\x00{i}" for i, name in enumerate(holes)}
        text = canonical({**entry, **marks})
        found = sorted((text.index(json.dumps(mark)), json.dumps(mark), name) for name, mark in marks.items())
        self._order = tuple(name for _, _, name in found)
        pieces, at = [], 0
        for start, mark, _ in found:
            pieces.append(text[at:start])
            at = start + len(mark)
        pieces.append(text[at:])
        self._pieces = tuple(pieces)

    def text(self, **values: str) -> str:
        """The canonical text with each hole's value (text; a time as its `iso` text)."""
        out = [self._pieces[0]]
        for name, piece in zip(self._order, self._pieces[1:], strict=True):
            out.append(json.dumps(values[name]))
            out.append(piece)
        return "".join(out)


def event_entry(
    *,
    patient: str,
    pathway: str,
    chain_seq: int,
    seq: int,
    trigger: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    role: str,
    effective_at: datetime,
    recorded_at: datetime,
    reason: str | None,
    payload: Mapping[str, Any] | None,
    voids: int | None,
) -> dict[str, Any]:
    return {
        "entry": "event",
        "patient": patient,
        "pathway": pathway,
        "chain_seq": chain_seq,
        "seq": seq,
        "trigger": trigger,
        "from": from_state,
        "to": to_state,
        "actor": actor,
        "role": role,
        "effective_at": effective_at,
        "recorded_at": recorded_at,
        "reason": reason,
        "payload": dict(payload) if payload else None,
        "voids": voids,
    }


def observation_entry(
    *,
    patient: str,
    pathway: str,
    chain_seq: int,
    kind: str,
    data: Mapping[str, Any],
    effective_at: datetime,
    recorded_at: datetime,
    actor: str,
    role: str,
) -> dict[str, Any]:
    return {
        "entry": "observation",
        "patient": patient,
        "pathway": pathway,
        "chain_seq": chain_seq,
        "kind": kind,
        "data": dict(data),
        "effective_at": effective_at,
        "recorded_at": recorded_at,
        "actor": actor,
        "role": role,
    }


def correction_entry(
    *,
    patient: str,
    pathway: str,
    chain_seq: int,
    observation_chain_seq: int | None,
    reason: str,
    actor: str,
    role: str | None,
    effective_at: datetime | None,
    recorded_at: datetime | None,
) -> dict[str, Any]:
    return {
        "entry": "correction",
        "patient": patient,
        "pathway": pathway,
        "chain_seq": chain_seq,
        "corrects": observation_chain_seq,
        "reason": reason,
        "actor": actor,
        "role": role,
        "effective_at": effective_at,
        "recorded_at": recorded_at,
    }


def of_event(patient: str, pathway: str, event: Event) -> dict[str, Any]:
    """The chain entry of `event`, a change to the enrollment of `patient` in `pathway`."""
    return event_entry(
        patient=patient,
        pathway=pathway,
        chain_seq=event.chain_seq or 0,
        seq=event.seq,
        trigger=event.trigger,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        role=event.role,
        effective_at=event.effective_at,
        recorded_at=event.recorded_at,
        reason=event.reason,
        payload=event.payload,
        voids=event.voids,
    )
