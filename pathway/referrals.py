"""Bulk intake of referrals from CSV: every row validated first, then written in batches.

Columns: `patient`, `referred_at` (required) and `pathway`, `profile`, `name`
(optional); a header row names them. Without `skip_invalid`, one bad row stops
the whole import before anything is written. A row whose patient already has
an enrollment in the pathway opened at the same time (a re-run of the same
file), or an open one, is skipped: nobody is enrolled twice.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

from pathway.catalog import Catalog
from pathway.errors import InvalidInput, PathwayError
from pathway.store.repository import Store
from pathway.store.tables import enrollments, patients
from pathway.timeutil import to_utc, utcnow
from pathway.views import iso

COLUMNS = ("patient", "referred_at", "pathway", "profile", "name")
REQUIRED = ("patient", "referred_at")
BATCH = 2000


@dataclass(frozen=True)
class Referral:
    line: int
    patient: str
    pathway: str
    version: int
    profile: str
    referred_at: datetime
    initial: str
    name: str | None


@dataclass
class ImportReport:
    """What an import did (or, with problems and no skipping, why it did nothing)."""

    rows: int = 0
    imported: int = 0
    already_enrolled: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "already_enrolled": self.already_enrolled,
            "invalid_rows": len({p.split(":")[0] for p in self.problems}),
            "problems": self.problems,
        }


def read_csv(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header must name the required columns."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from None
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(unknown)}")
            raise InvalidInput(f"{path}: line 1 (header): {'; '.join(parts)} (columns: {', '.join(COLUMNS)})")
        reader.fieldnames = header
        try:
            for row in reader:
                if None in row:
                    yield reader.line_num, {"__extra__": "1"}
                    continue
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None


def validate(
    rows: Iterable[tuple[int, Mapping[str, str]]],
    catalog: Catalog,
    default_pathway: str | None,
    check_patient: Callable[[str], object],
) -> tuple[list[Referral], list[str], int]:
    """Every row checked; returns (valid referrals, problems by line and field, row count)."""
    valid: list[Referral] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    count = 0
    for line, row in rows:
        count += 1
        if "__extra__" in row:
            problems.append(f"line {line}: more values than columns")
            continue
        errors: list[str] = []
        patient = row.get("patient", "")
        try:
            check_patient(patient)
        except PathwayError as exc:
            errors.append(f"patient: {exc}".replace("patient: patient: ", "patient: "))
        pathway_id = row.get("pathway") or default_pathway
        workflow = None
        if not pathway_id:
            errors.append("pathway: empty (give the column or --pathway)")
        else:
            try:
                workflow = catalog.get(pathway_id)
            except PathwayError as exc:
                errors.append(f"pathway: {exc}")
        try:
            referred = to_utc(row.get("referred_at") or None, name="referred_at", default=None)
            if not row.get("referred_at"):
                raise InvalidInput("referred_at: required (an ISO date or date-time)")
        except PathwayError as exc:
            errors.append(str(exc))
            referred = None
        profile = row.get("profile") or (workflow.default_profile if workflow else "")
        if workflow is not None and profile not in workflow.profiles:
            errors.append(f"profile: unknown profile {profile!r} (profiles: {', '.join(workflow.profiles)})")
        name = row.get("name") or None
        if name is not None and len(name) > 200:
            errors.append("name: longer than 200 characters")
        if not errors and workflow is not None and referred is not None:
            key = (patient, workflow.id)
            if key in seen:
                errors.append(f"patient: {patient} is referred to {workflow.id} again on line {seen[key]}")
            else:
                seen[key] = line
        if errors:
            problems += [f"line {line}: {e}" for e in errors]
            continue
        assert workflow is not None and referred is not None
        valid.append(
            Referral(line, patient, workflow.id, workflow.version, profile, referred, workflow.initial, name)
        )
    return valid, problems, count


_FIND_PATIENTS = select(patients.c.id, patients.c.identifier).where(
    patients.c.identifier.in_(bindparam("ids", expanding=True))
)
_FIND_ENROLLMENTS = select(
    enrollments.c.id,
    enrollments.c.patient_id,
    enrollments.c.pathway_id,
    enrollments.c.opened_at,
    enrollments.c.closed_at,
).where(enrollments.c.patient_id.in_(bindparam("pids", expanding=True)))


def write(
    store: Store,
    referrals: list[Referral],
    *,
    actor: str,
    role: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Enroll the referrals in batches (each one transaction); returns (imported, skipped)."""
    imported = skipped = 0
    for start in range(0, len(referrals), BATCH):
        batch = referrals[start : start + BATCH]
        done, passed = _write_batch(store, batch, actor=actor, role=role)
        imported += done
        skipped += passed
        if progress is not None:
            progress(len(batch))
    return imported, skipped


def _write_batch(store: Store, batch: list[Referral], *, actor: str, role: str) -> tuple[int, int]:
    recorded = utcnow()
    with store.write() as tx:
        conn = tx.conn
        ids = sorted({r.patient for r in batch})
        known = {row.identifier: row.id for row in conn.execute(_FIND_PATIENTS, {"ids": ids})}
        names = {r.patient: r.name for r in batch}
        new = [
            {"identifier": p, "display_name": names[p], "created_at": recorded} for p in ids if p not in known
        ]
        if new:
            tx.insert_many("patients", new)
            known = {row.identifier: row.id for row in conn.execute(_FIND_PATIENTS, {"ids": ids})}
        existing = conn.execute(_FIND_ENROLLMENTS, {"pids": list(known.values())}).all()
        # Skip an open enrollment in the pathway, and the very same referral imported before.
        wanted = {(known[r.patient], r.pathway, r.referred_at) for r in batch}
        blocked = {
            (row.patient_id, row.pathway_id)
            for row in existing
            if row.closed_at is None or (row.patient_id, row.pathway_id, to_utc(row.opened_at)) in wanted
        }
        todo = [r for r in batch if (known[r.patient], r.pathway) not in blocked]
        if not todo:
            return 0, len(batch)
        tx.insert_many(
            "enrollments",
            [
                {
                    "patient_id": known[r.patient],
                    "pathway_id": r.pathway,
                    "pathway_version": r.version,
                    "profile": r.profile,
                    "state": r.initial,
                    "held_from": None,
                    "entered_state_at": r.referred_at,
                    "opened_at": r.referred_at,
                    "closed_at": None,
                    "last_event_at": r.referred_at,
                    "last_seq": 1,
                    "version": 1,
                }
                for r in todo
            ],
        )
        created = {
            (row.patient_id, row.pathway_id): row.id
            for row in conn.execute(_FIND_ENROLLMENTS, {"pids": [known[r.patient] for r in todo]})
            if row.closed_at is None
        }
        event_rows, outbox_rows = [], []
        for r in todo:
            enrollment_id = created[(known[r.patient], r.pathway)]
            event_rows.append(
                {
                    "enrollment_id": enrollment_id,
                    "seq": 1,
                    "trigger": "enroll",
                    "from_state": None,
                    "to_state": r.initial,
                    "actor": actor,
                    "role": role,
                    "effective_at": r.referred_at,
                    "recorded_at": recorded,
                    "reason": None,
                    "payload": {"profile": r.profile, "source": "import"},
                }
            )
            message = {
                "id": str(uuid.uuid4()),
                "type": "enrollment.opened",
                "enrollment": enrollment_id,
                "patient": r.patient,
                "pathway": r.pathway,
                "pathway_version": r.version,
                "trigger": "enroll",
                "from": None,
                "to": r.initial,
                "effective_at": iso(r.referred_at),
                "recorded_at": iso(recorded),
                "actor": actor,
                "role": role,
            }
            tx.messages.append(message)
            outbox_rows.append(
                {
                    "message_id": message["id"],
                    "type": message["type"],
                    "enrollment_id": enrollment_id,
                    "payload": message,
                    "created_at": recorded,
                    "attempts": 0,
                }
            )
        tx.insert_many("events", event_rows)
        tx.insert_many("outbox", outbox_rows)
        return len(todo), len(batch) - len(todo)
