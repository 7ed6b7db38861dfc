"""The series the HTML report charts beside the reports, each one GROUP BY on both SQLite
and PostgreSQL: time in state in weekly buckets, work in progress as of each week, how
many enrollments made each move, and how many were opened and are still open."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from pathway.reports import sql
from pathway.store.repository import Store

#: Stays of a year or more share the last weekly bucket.
LAST_WEEK = 52
#: The WIP chart has at most about this many points (a week apart, or a multiple of a week).
WIP_POINTS = 120


@dataclass(frozen=True)
class StayWeeks:
    """One state's stays by whole weeks in the state (week `LAST_WEEK` holds the longer ones):
    completed stays by their length, stays still open at the as-of time by their age."""

    state: str
    completed: dict[int, int]
    still_open: dict[int, int]


def time_in_state(
    store: Store,
    *,
    as_of: datetime,
    pathway: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, StayWeeks]:
    """Stays per state in weekly buckets, chosen as the bottleneck report chooses them
    (entered in the `since`/`until` window, judged at `as_of`), so a state's completed
    stays add up to its exits there and its open stays to its patients waiting now."""
    dialect = store.backend
    params = {"as_of": as_of, "pathway": pathway, "since": since, "until": until}
    params = {k: sql.bind_time(dialect, v) if isinstance(v, datetime) else v for k, v in params.items()}
    window = " AND pathway_id = :pathway" if pathway else ""
    window += " AND {entered} >= :since" if since is not None else ""
    window += " AND {entered} <= :until" if until is not None else ""
    in_stays, in_enrollments = window.format(entered="entered_at"), window.format(entered="entered_state_at")

    def week(days: str) -> str:
        bucket = sql.whole(dialect, days, 7)
        return f"CASE WHEN {bucket} >= {LAST_WEEK} THEN {LAST_WEEK} ELSE {bucket} END"

    completed = (
        f"SELECT state, {week('days')} AS week, COUNT(*) AS stays FROM stays "
        f"WHERE left_at <= :as_of{in_stays} GROUP BY state, {week('days')}"
    )
    # Open at as_of: every open enrollment's current stay, and stays that ended after as_of.
    ages = (
        f"SELECT state, {sql.days(dialect, 'entered_state_at', ':as_of')} AS age FROM enrollments "
        f"WHERE closed_at IS NULL AND entered_state_at <= :as_of{in_enrollments} "
        f"UNION ALL SELECT state, {sql.days(dialect, 'entered_at', ':as_of')} FROM stays "
        f"WHERE left_at > :as_of AND entered_at <= :as_of{in_stays}"
    )
    still_open = (
        f"SELECT o.state, {week('o.age')} AS week, COUNT(*) AS stays FROM ({ages}) o "
        f"GROUP BY o.state, {week('o.age')}"
    )
    result: dict[str, StayWeeks] = {}
    with store.read() as tx:
        for query, field in ((completed, "completed"), (still_open, "still_open")):
            for row in tx.conn.execute(text(query), params):
                line = result.setdefault(row.state, StayWeeks(row.state, {}, {}))
                getattr(line, field)[int(row.week)] = int(row.stays)
    return result


@dataclass(frozen=True)
class WipSeries:
    """Enrollments in each state as of each date (the last date is the as-of time)."""

    dates: tuple[datetime, ...]
    states: dict[str, tuple[int, ...]]


def wip_over_time(
    store: Store,
    *,
    as_of: datetime,
    pathway: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> WipSeries:
    """Work in progress per state as of each week (or a multiple of a week on a long log)
    from `since` (default the first event) to `until` or `as_of`, whichever is earlier.

    Each state-changing event adds one to the state it enters and takes one from the state
    it leaves; the database sums those moves per state and week and keeps a running total,
    so the work is one pass over the events whatever the number of dates."""
    dialect = store.backend
    end = min(until, as_of) if until is not None else as_of
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    moves_from = (
        "FROM events e JOIN enrollments n ON n.id = e.enrollment_id "
        f"WHERE e.effective_at <= :end AND {sql.live('e')} {pathway_filter}"
    )
    params: dict[str, Any] = {"end": sql.bind_time(dialect, end), "pathway": pathway}
    with store.read() as tx:
        first = since
        if first is None:
            found = tx.conn.execute(text(f"SELECT MIN(e.effective_at) {moves_from}"), params).scalar()
            if found is None:
                return WipSeries((), {})
            first = found if isinstance(found, datetime) else datetime.fromisoformat(found)
            first = first.replace(tzinfo=end.tzinfo) if first.tzinfo is None else first
        span = max((end - first).total_seconds() / 86400, 0.0)
        step = 7 * max(1, math.ceil(span / 7 / WIP_POINTS))
        last = max(1, math.ceil(span / step))
        start = end - timedelta(days=step * last)
        # The point an event first counts at: the k-th date is end - (last - k) * step.
        point = (
            f"CASE WHEN e.effective_at <= :start THEN 0 "
            f"ELSE {last} - {sql.whole(dialect, sql.days(dialect, 'e.effective_at', ':end'), step)} END"
        )
        query = f"""
WITH moves AS (
    SELECT e.to_state AS state, {point} AS k, 1 AS delta {moves_from}
      AND (e.from_state IS NULL OR e.from_state <> e.to_state)
    UNION ALL
    SELECT e.from_state, {point}, -1 {moves_from}
      AND e.from_state IS NOT NULL AND e.from_state <> e.to_state
)
SELECT state, k, SUM(SUM(delta)) OVER (PARTITION BY state ORDER BY k) AS wip
FROM moves GROUP BY state, k ORDER BY state, k"""
        rows = tx.conn.execute(text(query), {**params, "start": sql.bind_time(dialect, start)}).all()
    running: dict[str, list[int | None]] = {}
    for row in rows:
        running.setdefault(row.state, [None] * (last + 1))[int(row.k)] = int(row.wip)
    states: dict[str, tuple[int, ...]] = {}
    for state, points in running.items():
        held, filled = 0, []
        for value in points:  # no move in a week: the count carries over
            held = held if value is None else value
            filled.append(held)
        states[state] = tuple(filled)
    dates = tuple(start + timedelta(days=step * k) for k in range(last + 1))
    return WipSeries(dates, states)


def transitions_taken(
    store: Store, *, as_of: datetime, pathway: str | None = None
) -> list[tuple[str | None, str, int]]:
    """(from state, to state, enrollments that made that move) up to `as_of`; the from state
    is None for a new referral."""
    dialect = store.backend
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    query = f"""
SELECT e.from_state AS source, e.to_state AS target, COUNT(DISTINCT e.enrollment_id) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of AND (e.from_state IS NULL OR e.from_state <> e.to_state)
  AND {sql.live("e")} {pathway_filter}
GROUP BY e.from_state, e.to_state"""
    with store.read() as tx:
        rows = tx.conn.execute(
            text(query), {"as_of": sql.bind_time(dialect, as_of), "pathway": pathway}
        ).all()
    return sorted(((r.source, r.target, int(r.enrollments)) for r in rows), key=lambda r: (r[0] or "", r[1]))


def enrollment_counts(store: Store, *, as_of: datetime, pathway: str | None) -> tuple[int, int]:
    """Enrollments opened by `as_of`, and those still open then."""
    pathway_filter = "AND pathway_id = :pathway" if pathway else ""
    query = f"""
SELECT COUNT(*) AS opened,
       COALESCE(SUM(CASE WHEN closed_at IS NULL OR closed_at > :as_of THEN 1 ELSE 0 END), 0) AS still_open
FROM enrollments WHERE opened_at <= :as_of {pathway_filter}"""
    with store.read() as tx:
        row = tx.conn.execute(
            text(query), {"as_of": sql.bind_time(store.backend, as_of), "pathway": pathway}
        ).one()
    return int(row.opened), int(row.still_open)
