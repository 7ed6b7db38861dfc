"""Bulk intake of referrals from CSV: every row validated first, then written in batches.

Columns: `patient`, `referred_at` (required) and `pathway`, `profile`, `name`
(optional); a header row names them. Without `skip_invalid`, one bad row stops
the whole import before anything is written. A row whose patient already has
an enrollment in the pathway opened at the same time (a re-run of the same
file), or an open one, is skipped: nobody is enrolled twice. A row whose episode
would overlap another of the patient's in the same region (open in another
pathway of it, or closed after the referral) is a problem like any other.

Speed (bench/import.py): rows are read as plain tuples, and what repeats from
row to row (a pathway, a date, a profile) is looked up and checked once; the
batches go to `pathway.store.bulk`, which writes each table with one
executemany.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from pathway.definitions.catalog import Catalog
from pathway.domain.episodes import overlap
from pathway.domain.fields import CONTROL, LINE_BREAKS
from pathway.domain.timeutil import effective, iso, utcnow
from pathway.errors import ConcurrencyError, InvalidInput, PathwayError
from pathway.store.bulk import enroll_many, episodes
from pathway.store.repository import Store

COLUMNS = ("patient", "referred_at", "pathway", "profile", "name")
REQUIRED = ("patient", "referred_at")
#: Rows per transaction: fewer, larger commits are faster (each one is a durable sync), while
#: one batch still holds the write lock for only a fraction of a second.
BATCH = 10_000
MAX_NAME = 200  # as `Clinic.enroll`
RETRIES = 3  # writes of one batch that met a concurrent import of the same patients

#: A row as read: the five columns' values in COLUMNS order (empty when absent), or
#: None when the line has more values than the header has columns.
Row = tuple[str, str, str, str, str] | None


class Referral(NamedTuple):
    """One valid row, ready to enroll (a `pathway.store.bulk.NewEnrollment`)."""

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


def read_csv(path: str | Path) -> Iterator[tuple[int, Row]]:
    """(line number, row) pairs; the header must name the required columns."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader, [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from None
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        twice = sorted({c for c in header if header.count(c) > 1})
        if missing or unknown or twice:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(unknown)}")
            if twice:
                parts.append(f"column(s) {', '.join(twice)} given twice (which one is meant?)")
            raise InvalidInput(f"{path}: line 1 (header): {'; '.join(parts)} (columns: {', '.join(COLUMNS)})")
        width = len(header)
        position = {name: i for i, name in enumerate(header)}
        absent = width  # index of the "" appended to every row for the columns not in the file
        a, b, c, d, e = (position.get(name, absent) for name in COLUMNS)
        padding = [""] * (width + 1)
        try:
            for values in reader:
                size = len(values)
                if size == width:
                    values.append("")
                elif size > width:
                    yield reader.line_num, None
                    continue
                elif size == 0:
                    continue  # a blank line
                else:
                    values += padding[size:]
                yield (
                    reader.line_num,
                    (
                        values[a].strip(),
                        values[b].strip(),
                        values[c].strip(),
                        values[d].strip(),
                        values[e].strip(),
                    ),
                )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None


def _from_mapping(row: Mapping[str, str] | Row) -> Row:
    """A row given as a mapping of column to value (the Python API) as the reader's tuple."""
    if row is None or isinstance(row, tuple):
        return row
    if "__extra__" in row:
        return None
    patient, referred_at, pathway, profile, name = (row.get(c) or "" for c in COLUMNS)
    return patient, referred_at, pathway, profile, name


def _target(catalog: Catalog, pathway_id: str, profile: str) -> tuple[Any, str | None, str | None]:
    """(pathway id, version, profile, initial state) for a row's pathway and profile, or the
    problems with them: (fields or None, pathway problem, profile problem)."""
    if not pathway_id:
        return None, "pathway: empty (give the column or --pathway)", None
    try:
        workflow = catalog.get(pathway_id)
    except PathwayError as exc:
        return None, f"pathway: {exc}", None
    profile = profile or workflow.default_profile
    if profile not in workflow.profiles:
        known = ", ".join(workflow.profiles)
        return None, None, f"profile: unknown profile {profile!r} (profiles: {known})"
    return (workflow.id, workflow.version, profile, workflow.initial), None, None


def _referred_at(text: str) -> datetime | str:
    """The referral time, or the problem with it."""
    if not text:
        return "referred_at: required (an ISO date or date-time)"
    try:
        return effective(text, utcnow(), name="referred_at")
    except PathwayError as exc:
        return str(exc)


def _name_problem(name: str) -> str | None:
    if len(name) > MAX_NAME:
        return f"name: longer than {MAX_NAME} characters"
    if CONTROL.search(name):
        return "name: contains control characters"
    if LINE_BREAKS.search(name):
        return "name: must be on one line (no tabs or line breaks)"
    return None


def validate(
    rows: Iterable[tuple[int, Mapping[str, str] | Row]],
    catalog: Catalog,
    default_pathway: str | None,
    check_patient: Callable[[str], object],
) -> tuple[list[Referral], list[str], int]:
    """Every row checked; returns (valid referrals, problems by line and field, row count)."""
    valid: list[Referral] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], tuple[int, str]] = {}  # (patient, region): (line, pathway)
    regions: dict[str, str] = {}
    count = 0
    # What repeats from row to row is checked once: (pathway, profile) and referred_at text.
    targets: dict[tuple[str, str], tuple[Any, str | None, str | None]] = {}
    times: dict[str, datetime | str] = {}
    for line, given in rows:
        count += 1
        row = given if given is None or type(given) is tuple else _from_mapping(given)
        if row is None:
            problems.append(f"line {line}: more values than columns")
            continue
        patient, referred_text, pathway_text, profile_text, name = row
        target = targets.get((pathway_text, profile_text))
        if target is None:
            pathway_id = pathway_text or default_pathway or ""
            target = targets[pathway_text, profile_text] = _target(catalog, pathway_id, profile_text)
        referred = times.get(referred_text)
        if referred is None:
            referred = times[referred_text] = _referred_at(referred_text)
        try:
            check_patient(patient)
            patient_problem = None
        except PathwayError as exc:
            patient_problem = f"patient: {exc}".replace("patient: patient: ", "patient: ")
        fields = target[0]
        name_problem = _name_problem(name) if name else None
        if patient_problem or fields is None or name_problem or type(referred) is not datetime:
            errors = (patient_problem, target[1], referred if type(referred) is str else None, target[2])
            problems += [f"line {line}: {e}" for e in (*errors, name_problem) if e]
            continue
        pathway, version, profile, initial = fields
        region = regions.get(pathway) or regions.setdefault(pathway, catalog.region(pathway))
        if (patient, region) in seen:
            earlier, before = seen[patient, region]
            problems.append(
                f"line {line}: patient: referred to {pathway} again (also on line {earlier})"
                if before == pathway
                else f"line {line}: patient: also referred to {before} on line {earlier}, in the "
                f"same region ({region}): episodes in one region may not overlap"
            )
            continue
        seen[patient, region] = (line, pathway)
        valid.append(Referral(line, patient, pathway, version, profile, referred, initial, name or None))
    return valid, problems, count


def overlaps(
    store: Store, referrals: Sequence[Referral], region: Callable[[str], str]
) -> list[tuple[int, str]]:
    """(line, problem) for each referral whose episode would overlap one of the patient's in the
    database in the same region (clarification 8): one open in another pathway of the
    region, or one that closed after the referral. A referral the patient already has
    (same pathway, opened at the same time: the file imported before) or an open
    enrollment in the same pathway is not a problem: `write` skips it."""
    with store.read() as tx:
        known = episodes(tx, [r.patient for r in referrals])
    problems: list[tuple[int, str]] = []
    for r in referrals if known else ():
        mine = known.get(r.patient, [])
        if any(
            e.pathway == r.pathway and (e.closed_at is None or e.opened_at == r.referred_at) for e in mine
        ):
            continue  # skipped by write: nobody is enrolled twice
        found = overlap(mine, r.pathway, r.referred_at, region)
        if found is not None and found.open is not None:
            problems.append(
                (
                    r.line,
                    f"line {r.line}: patient: has an open episode in {found.open.pathway} "
                    f"({found.region}): episodes in one region may not overlap",
                )
            )
        elif found is not None and found.closed_at is not None:
            problems.append(
                (
                    r.line,
                    f"line {r.line}: referred_at: before the patient's previous episode in "
                    f"{found.region} closed ({iso(found.closed_at)}): episodes may not overlap",
                )
            )
    return problems


def write(
    store: Store,
    referrals: Sequence[Referral],
    *,
    actor: str,
    role: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Enroll the referrals in batches (each one transaction); returns (imported, skipped).

    A batch that meets another import of the same patients at the same moment (PostgreSQL:
    their rows became visible only as the other committed) is written again: the second
    time those patients are known, and a referral already enrolled is skipped."""
    imported = skipped = 0
    for start in range(0, len(referrals), BATCH):
        batch = referrals[start : start + BATCH]
        for attempt in range(1, RETRIES + 1):
            try:
                with store.write() as tx:
                    done, passed = enroll_many(tx, batch, actor=actor, role=role, recorded=utcnow())
                break
            except ConcurrencyError:
                if attempt == RETRIES:
                    raise
        imported += done
        skipped += passed
        if progress is not None:
            progress(len(batch))
    return imported, skipped
