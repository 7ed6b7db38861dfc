"""Streaming exports of the event log: CSV, JSON lines and XES (for process-mining tools).

Rows are read with a streaming cursor and written as they come, so memory does
not grow with the log. With a pseudonym key, patient identifiers, actors and
enrollment numbers become keyed hashes (HMAC-SHA256) and free-text reasons are left out, so the file can leave
the clinic; the same key gives the same pseudonym, so exports can be joined.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, TextIO
from xml.sax.saxutils import quoteattr

from sqlalchemy import select

from pathway.domain.asof import versions_after
from pathway.domain.timeutil import iso
from pathway.errors import InvalidInput
from pathway.store.repository import Store
from pathway.store.tables import enrollments, events, patients

FORMATS = ("csv", "jsonl", "xes")
PSEUDONYM_KEY_ENV = "PATHWAY_PSEUDONYM_KEY"
COLUMNS = (
    "patient",
    "pathway",
    "version",
    "enrollment",
    "seq",
    "trigger",
    "from",
    "to",
    "at",
    "recorded_at",
    "actor",
    "role",
    "reason",
    "voids",
)


def pseudonym_key(required: bool) -> bytes | None:
    """The key from PATHWAY_PSEUDONYM_KEY; an error when it is required and missing or short."""
    if not required:
        return None
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if len(key) < 16:
        raise InvalidInput(
            f"--pseudonymize needs a secret key of at least 16 characters in {PSEUDONYM_KEY_ENV} "
            "(keep it: the same key gives the same pseudonyms)"
        )
    return key.encode()


def pseudonym(key: bytes, identifier: str, what: str = "") -> str:
    """A stable keyed hash of a patient identifier (or, with `what` "actor" or "enrollment",
    of a member of staff's name or an enrollment's number: each its own namespace)."""
    prefix = {"": "P-", "actor": "A-", "enrollment": "E-"}[what]
    message = identifier if not what else f"{what}:{identifier}"
    return prefix + hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:20]


_EVENT_ROWS = (
    select(
        patients.c.identifier.label("patient"),
        enrollments.c.pathway_id.label("pathway"),
        enrollments.c.pathway_version.label("version"),
        events.c.enrollment_id.label("enrollment"),
        events.c.seq,
        events.c.trigger,
        events.c.from_state,
        events.c.to_state,
        events.c.effective_at,
        events.c.recorded_at,
        events.c.actor,
        events.c.role,
        events.c.reason,
        events.c.payload,
        events.c.voids,
    )
    .join(enrollments, enrollments.c.id == events.c.enrollment_id)
    .join(patients, patients.c.id == enrollments.c.patient_id)
    .order_by(events.c.enrollment_id, events.c.seq)
)


def event_rows(store: Store, key: bytes | None, pathway: str | None = None) -> Iterator[dict[str, Any]]:
    """Every event as a flat dict, streamed, oldest enrollment first; `version` is the
    workflow version the enrollment was on after the event (a `migrate` event moves it)."""
    query = _EVENT_ROWS if pathway is None else _EVENT_ROWS.where(enrollments.c.pathway_id == pathway)
    with store.engine.connect() as conn:
        result = conn.execution_options(yield_per=2000).execute(query)
        for rows in _by_enrollment(result):
            for r, version in zip(rows, versions_after(rows, rows[-1].version), strict=True):
                yield _flat(r, version, key)


def _by_enrollment(result: Iterable[Any]) -> Iterator[list[Any]]:
    """The rows (ordered by enrollment) in one list per enrollment: memory grows with the
    longest enrollment, never with the log."""
    rows: list[Any] = []
    for r in result:
        if rows and r.enrollment != rows[-1].enrollment:
            yield rows
            rows = []
        rows.append(r)
    if rows:
        yield rows


def _flat(r: Any, version: int, key: bytes | None) -> dict[str, Any]:
    return {
        "patient": pseudonym(key, r.patient) if key else r.patient,
        "pathway": r.pathway,
        "version": version,
        "enrollment": pseudonym(key, str(r.enrollment), "enrollment") if key else r.enrollment,
        "seq": r.seq,
        "trigger": r.trigger,
        "from": r.from_state,
        "to": r.to_state,
        "at": iso(r.effective_at),
        "recorded_at": iso(r.recorded_at),
        "actor": pseudonym(key, r.actor, "actor") if key else r.actor,
        "role": r.role,
        "reason": None if key else r.reason,
        "voids": r.voids,  # a reopen: the seq of the close it voids (entered in error)
    }


def write_events(out: TextIO, rows: Iterator[dict[str, Any]], fmt: str) -> int:
    """Write rows to `out` in `fmt`; returns how many events were written."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
            count += 1
    else:
        count = _write_xes(out, rows)
    return count


def _attr(kind: str, key: str, value: object) -> str:
    return f"<{kind} key={quoteattr(key)} value={quoteattr(str(value))}/>"


def _write_xes(out: TextIO, rows: Iterator[dict[str, Any]]) -> int:
    """IEEE XES 1849-2016 with the concept, time, lifecycle and org extensions:
    one trace per enrollment, one event per transition."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        '<log xes.version="1849-2016" xes.features="nested-attributes" '
        'xmlns="http://www.xes-standard.org/">\n'
    )
    for name, prefix, uri in (
        ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
        ("Time", "time", "http://www.xes-standard.org/time.xesext"),
        ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
        ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ):
        out.write(f'  <extension name="{name}" prefix="{prefix}" uri="{uri}"/>\n')
    out.write('  <global scope="trace">' + _attr("string", "concept:name", "") + "</global>\n")
    out.write(
        '  <global scope="event">'
        + _attr("string", "concept:name", "")
        + _attr("date", "time:timestamp", "1970-01-01T00:00:00Z")
        + _attr("string", "lifecycle:transition", "complete")
        + "</global>\n"
    )
    out.write('  <classifier name="Activity" keys="concept:name"/>\n')
    current = None
    count = 0
    for row in rows:
        if row["enrollment"] != current:
            if current is not None:
                out.write("  </trace>\n")
            current = row["enrollment"]
            out.write(
                "  <trace>"
                + _attr("string", "concept:name", f"{row['patient']}/{current}")
                + _attr("string", "patient", row["patient"])
                + _attr("string", "pathway", f"{row['pathway']} v{row['version']}")
                + "\n"
            )
        parts = [
            _attr("string", "concept:name", row["trigger"]),
            _attr("date", "time:timestamp", row["at"]),
            _attr("string", "lifecycle:transition", "complete"),
            _attr("string", "org:resource", row["actor"]),
            _attr("string", "org:role", row["role"]),
            _attr("string", "state", row["to"]),
            _attr("date", "recorded", row["recorded_at"]),
        ]
        if row["voids"] is not None:
            parts.append(_attr("int", "voids", row["voids"]))
        out.write("    <event>" + "".join(parts) + "</event>\n")
        count += 1
    if current is not None:
        out.write("  </trace>\n")
    out.write("</log>\n")
    return count
