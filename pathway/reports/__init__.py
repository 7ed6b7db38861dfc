"""Pathway reports, computed by SQL aggregation over the event log.

A *stay* is the time an enrollment spends in one state: it starts with the
event that entered the state and ends with the next state change. The last
stay of an open enrollment is still running: it is *censored* at the as-of
time (counted with its current age, never dropped). Events that do not change
the state (a version migration) do not split a stay. Terminal states have no
stay. Percentiles are nearest-rank (the smallest value with at least p% of the
values at or below it), the same in SQL and in the tests' plain computation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import text

from pathway.definitions.catalog import Catalog
from pathway.service.results import iso
from pathway.store.fastpath import sqlite_time
from pathway.store.repository import Store


def _days(dialect: str, start: str, end: str) -> str:
    """SQL for the fractional days from `start` to `end`."""
    if dialect == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"
    return f"(julianday({end}) - julianday({start}))"


def _calendar_days(dialect: str, start: str, end: str) -> str:
    """SQL for the whole calendar days (UTC dates) from `start` to `end`: the count that
    `status`, `list` and the worklist use, so "over SLA" means the same everywhere."""
    if dialect == "postgresql":
        return f"(({end} AT TIME ZONE 'UTC')::date - ({start} AT TIME ZONE 'UTC')::date)"
    return f"CAST(julianday(date({end})) - julianday(date({start})) AS INTEGER)"


@dataclass(frozen=True)
class StateLine:
    """One state's line of the bottleneck report (days are fractional)."""

    state: str
    sla_days: int | None
    entries: int
    exits: int
    wip: int
    median_days: float | None
    p90_days: float | None
    max_days: float | None
    open_median_days: float | None
    open_p90_days: float | None
    breaches_completed: int
    breaches_open: int
    patient_days: float
    #: Planned care (recovery, follow-up): listed after the waiting states, never the bottleneck.
    planned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class BottleneckReport:
    pathway: str | None
    as_of: datetime
    states: tuple[StateLine, ...]
    hold: StateLine | None
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "pathway": self.pathway,
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "states": [s.to_dict() for s in self.states],
            "hold": self.hold.to_dict() if self.hold else None,
            "summary": self.summary,
        }


def bottlenecks(
    store: Store,
    catalog: Catalog,
    *,
    as_of: datetime,
    pathway: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BottleneckReport:
    """Entries, exits, WIP, time in state (completed and censored), SLA breaches and
    patient-days per state. `since`/`until` keep stays that entered their state in that
    window; stays are judged as of `as_of` (events after it are ignored).

    Completed stays come from the `stays` table, which the database fills as events are
    inserted (migration 0003). Its primary key orders each state's stays by length, so
    a percentile is one walk along that index to the nearest rank, with no sort. Stays
    still open at `as_of` are each open enrollment's current state, kept in a partial
    index in order of entry, plus (looking back) stays that ended after `as_of`.
    """
    dialect = store.backend
    sla_of = _slas(catalog, pathway)
    params: dict[str, Any] = {"as_of": as_of, "pathway": pathway, "since": since, "until": until}
    params = {k: _time(dialect, v) if isinstance(v, datetime) else v for k, v in params.items()}
    limit = "CASE state " + " ".join(f"WHEN :st_{i} THEN :sla_{i}" for i in range(len(sla_of.days)))
    limit = limit + " END" if sla_of.days else "NULL"
    # An open stay is over SLA when it began before midnight (UTC) of as_of's date minus the
    # SLA: more calendar days than the SLA, as `status` counts, with no date arithmetic per row.
    cut = "CASE state " + " ".join(f"WHEN :st_{i} THEN :cut_{i}" for i in range(len(sla_of.days)))
    cut = cut + " END" if sla_of.days else "NULL"
    for i, (state, days) in enumerate(sorted(sla_of.days.items())):
        params[f"st_{i}"], params[f"sla_{i}"] = state, days
        midnight = datetime.combine(as_of.date() - timedelta(days=days), time(0), tzinfo=UTC)
        params[f"cut_{i}"] = _time(dialect, midnight)
    # Stays (s) and open enrollments (n) filtered alike: pathway, and the window on entry.
    window = " AND pathway_id = :pathway" if pathway else ""
    window += " AND {entered} >= :since" if since is not None else ""
    window += " AND {entered} <= :until" if until is not None else ""
    in_stays, in_enrollments = window.format(entered="entered_at"), window.format(entered="entered_state_at")
    # Open at as_of: stays that ended after it (only when looking back), and the current
    # stay of every open enrollment, read from a partial index in (state, entered) order.
    still_open = f"left_at > :as_of AND entered_at <= :as_of{in_stays}"
    current = f"closed_at IS NULL AND entered_state_at <= :as_of{in_enrollments}"

    def measure(table: str, entered: str, where: str) -> str:
        age = _days(dialect, entered, ":as_of")
        return (
            f"SELECT state, COUNT(*) AS stays, SUM({age}) AS total, "
            f"SUM(CASE WHEN {entered} < {cut} THEN 1 ELSE 0 END) AS breaches "
            f"FROM {table} WHERE {where} GROUP BY state"
        )

    with store.read() as tx:

        def run(sql: str, **extra: Any) -> Any:
            return tx.conn.execute(text(sql), {**params, **extra})

        looking_back = bool(run("SELECT EXISTS (SELECT 1 FROM stays WHERE left_at > :as_of)").scalar())
        completed = ("left_at <= :as_of" if looking_back else "1 = 1") + in_stays
        done = {
            row.state: row
            for row in run(
                "SELECT state, COUNT(*) AS stays, SUM(days) AS total "
                f"FROM stays WHERE {completed} GROUP BY state"
            )
        }
        # Stays that ended after as_of (looking back only): few, read once along left_at.
        spanning: dict[str, list[tuple[Any, float, int]]] = {}
        if looking_back:
            age_then = _days(dialect, "entered_at", ":as_of")
            for row in run(
                f"SELECT state, entered_at, {age_then} AS age, "
                f"CASE WHEN entered_at < {cut} THEN 1 ELSE 0 END AS over "
                f"FROM stays WHERE {still_open}"
            ):
                spanning.setdefault(row.state, []).append((row.entered_at, float(row.age), int(row.over)))
        running: dict[str, _Open] = {}
        for row in run(measure("enrollments", "entered_state_at", current)):
            running[row.state] = _Open(int(row.stays), _f(row.total), int(row.breaches or 0))
        current_counts = {state: line.stays for state, line in running.items()}
        for state, found in spanning.items():
            mine = running.get(state, _Open(0, 0.0, 0))
            running[state] = _Open(
                mine.stays + len(found),
                mine.total + sum(a for _, a, _ in found),
                mine.breaches + sum(over for _, _, over in found),
            )

        def nearest(sql: str, state: str, k: int, n: int, *, newest_first: bool = False) -> float:
            """The k-th smallest of n values, walking an index from whichever end is nearer.
            `sql` ends in ORDER BY <key> {direction} LIMIT 1 OFFSET :k; the key runs the
            other way from the value when `newest_first` (a stay's age against its entry)."""
            ascending = k <= (n + 1) // 2
            query = sql.format(direction="ASC" if ascending != newest_first else "DESC")
            return float(run(query, state=state, k=k - 1 if ascending else n - k).scalar_one())

        # Completed stays: a walk along the (state, days) key to the rank.
        by_length = (
            f"SELECT days FROM stays WHERE state = :state AND {completed} "
            "ORDER BY days {direction} LIMIT 1 OFFSET :k"
        )
        completed_lines: dict[str, tuple[float, float, float, int]] = {}
        for state, row in done.items():
            n = int(row.stays)
            sla = sla_of.days.get(state)
            # More calendar days than the SLA: certainly so from SLA + 1 days of elapsed time,
            # never at or under the SLA; between the two the dates decide. A key range either way.
            breaches = (
                run(
                    f"SELECT COUNT(*) FROM stays WHERE state = :state AND days > :sla AND {completed} "
                    f"AND (days >= :sla + 1 OR {_calendar_days(dialect, 'entered_at', 'left_at')} > :sla)",
                    state=state,
                    sla=sla,
                ).scalar_one()
                if sla
                else 0
            )
            completed_lines[state] = (
                nearest(by_length, state, (n + 1) // 2, n),
                nearest(by_length, state, (9 * n + 9) // 10, n),
                nearest(by_length, state, n, n),
                int(breaches),
            )

        # Open stays: the k-th shortest is the k-th latest entry. The current stays of open
        # enrollments are walked along the partial index; when looking back, the few stays
        # that ended after as_of are merged in by a binary search on how many of them rank
        # above the k-th, each probe one index walk.
        age = _days(dialect, "entered", ":as_of")
        by_entry = (
            f"SELECT entered_state_at AS entered FROM enrollments WHERE state = :state AND {current} "
            "ORDER BY entered_state_at {direction} LIMIT 1 OFFSET :k"
        )
        open_ranks: dict[str, tuple[float, float]] = {}
        for state, stays_now in running.items():
            n, in_enrollments_now = stays_now.stays, current_counts.get(state, 0)
            later = sorted((entered for entered, _, _ in spanning.get(state, ())), reverse=True)

            def newest(j: int, state: str = state, m: int = in_enrollments_now) -> Any:
                """The j-th latest entry (1-based) among the open enrollments' current stays."""
                ascending = j > (m + 1) // 2
                query = by_entry.format(direction="ASC" if ascending else "DESC")
                return run(query, state=state, k=m - j if ascending else j - 1).scalar_one()

            def kth_age(k: int, later: list[Any] = later, m: int = in_enrollments_now) -> float:
                entry = kth_newest(k, later, m, newest)
                return float(run(f"SELECT {age.replace('entered', ':entered')}", entered=entry).scalar_one())

            open_ranks[state] = (kth_age((n + 1) // 2), kth_age((9 * n + 9) // 10))
    lines = []
    for state in sorted(done.keys() | running.keys()):
        if state in sla_of.terminal:
            continue
        d, r = done.get(state), running.get(state)
        entries = (int(d.stays) if d else 0) + (r.stays if r else 0)
        lines.append(
            StateLine(
                state=state,
                sla_days=sla_of.days.get(state),
                entries=entries,
                exits=int(d.stays) if d else 0,
                wip=r.stays if r else 0,
                median_days=completed_lines[state][0] if d else None,
                p90_days=completed_lines[state][1] if d else None,
                max_days=completed_lines[state][2] if d else None,
                open_median_days=open_ranks[state][0] if r else None,
                open_p90_days=open_ranks[state][1] if r else None,
                breaches_completed=completed_lines[state][3] if d else 0,
                breaches_open=r.breaches if r else 0,
                patient_days=_f(d.total if d else 0) + _f(r.total if r else 0),
                planned=state in sla_of.planned,
            )
        )
    hold = next((line for line in lines if line.state in sla_of.holds), None)
    # Waiting states ranked by patient-days, then the planned ones (also by patient-days).
    states = sorted(
        (line for line in lines if line.state not in sla_of.holds),
        key=lambda line: (line.planned, -line.patient_days),
    )
    return BottleneckReport(pathway, as_of, tuple(states), hold, _summary(states))


def kth_newest(k: int, later: Sequence[Any], count: int, newest: Callable[[int], Any]) -> Any:
    """The k-th newest (1-based) of two newest-first sequences taken together: `later`, in
    memory, and `count` values read one at a time by `newest(j)` (an index walk each).
    A binary search on how many of the k come from `later`, so O(log len(later)) reads."""
    low, high = max(0, k - count), min(k, len(later))
    while True:
        i = (low + high) // 2  # taken from `later`; k - i from the other
        j = k - i
        if i < len(later) and j > 0 and newest(j) < later[i]:
            low = i + 1
        elif i > 0 and j < count and later[i - 1] < newest(j + 1):
            high = i - 1
        else:
            return min(([later[i - 1]] if i else []) + ([newest(j)] if j else []))


@dataclass(frozen=True)
class _Open:
    stays: int
    total: float
    breaches: int


def _time(dialect: str, value: datetime) -> Any:
    """A time as the database compares it (SQLite stores UTC text)."""
    return sqlite_time(value) if dialect == "sqlite" else value


@dataclass(frozen=True)
class _Slas:
    days: dict[str, int]
    terminal: set[str]
    holds: set[str]
    planned: set[str]


def _slas(catalog: Catalog, pathway: str | None) -> _Slas:
    workflows = [w for w in catalog.all() if pathway is None or w.id == pathway]
    days: dict[str, int] = {}
    for w in workflows:
        for s in w.states.values():
            if s.sla_days:
                days[s.name] = s.sla_days
    return _Slas(
        days,
        {s.name for w in workflows for s in w.states.values() if s.terminal},
        {s.name for w in workflows for s in w.states.values() if s.hold},
        {s.name for w in workflows for s in w.states.values() if s.planned},
    )


def _f(value: Any) -> float:
    return float(value or 0)


def _summary(states: list[StateLine]) -> str:
    """Name the bottleneck among the waiting states (planned care and holds aside)."""
    states = [s for s in states if not s.planned]
    total = sum(s.patient_days for s in states)
    if not states or total <= 0:
        return "No waiting recorded yet."
    top = states[0]
    share = 100 * top.patient_days / total
    median = f"median {top.median_days:.0f} days" if top.median_days is not None else "no completed stays"
    sla = f" against a {top.sla_days}-day SLA" if top.sla_days else ""
    return (
        f"Most waiting is in {top.state}: {share:.0f}% of patient-days; {median}{sla}; "
        f"{top.breaches_open} {'patient' if top.breaches_open == 1 else 'patients'} over SLA now."
    )


# --- referral to treatment -----------------------------------------------------------------

#: States that stop the RTT clock as a decision not to treat (CLINICAL.md).
RTT_STOP_STATES = ("ineligible", "declined", "referred_elsewhere", "discharged")
RTT_STANDARD_WEEKS = 18
RTT_TARGET_PCT = 92.0
NEAR_BREACH_WEEKS = 16


@dataclass(frozen=True)
class RttReport:
    as_of: datetime
    incomplete: int
    within_standard: int
    within_pct: float | None
    by_weeks: dict[int, int]
    at_risk: list[dict[str, Any]]
    completed_by_month: list[dict[str, Any]]
    closed_without_stop: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "standard_weeks": RTT_STANDARD_WEEKS,
            "target_pct": RTT_TARGET_PCT,
            "incomplete": self.incomplete,
            "within_standard": self.within_standard,
            "within_pct": self.within_pct,
            "meets_target": self.within_pct is not None and self.within_pct >= RTT_TARGET_PCT,
            "incomplete_by_weeks": self.by_weeks,
            "at_risk": self.at_risk,
            "completed_by_month": self.completed_by_month,
            "closed_without_stop": self.closed_without_stop,
        }


def rtt(store: Store, *, as_of: datetime, pathway: str | None = None) -> RttReport:
    """Referral-to-treatment: the clock starts at referral (enrolment) and stops at the first
    perform_ablation or a decision not to treat. Holds do not pause it. The wait is counted in
    calendar days (UTC dates), so day 126 is within 18 weeks whatever the time of day.
    Incomplete pathways are judged against 18 weeks (the 92% standard); completed ones by
    month of referral."""
    dialect = store.backend
    stops = ", ".join(f"'{s}'" for s in RTT_STOP_STATES)
    month = (
        "to_char(c.started AT TIME ZONE 'UTC', 'YYYY-MM')"
        if dialect == "postgresql"
        else "substr(c.started, 1, 7)"
    )
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    clocks = f"""
WITH clocks AS (
    SELECT n.id, p.identifier AS patient, n.pathway_id AS pathway, n.closed_at,
           MIN(CASE WHEN e.seq = 1 THEN e.effective_at END) AS started,
           MIN(CASE WHEN e.seq > 1 AND (e.trigger = 'perform_ablation' OR e.to_state IN ({stops}))
                    THEN e.effective_at END) AS stopped
    FROM enrollments n JOIN patients p ON p.id = n.patient_id
    JOIN events e ON e.enrollment_id = n.id AND e.effective_at <= :as_of
    WHERE 1 = 1 {pathway_filter}
    GROUP BY n.id, p.identifier, n.pathway_id, n.closed_at
),
waiting AS (
    SELECT c.*, {_calendar_days(dialect, "c.started", ":as_of")} / 7.0 AS weeks
    FROM clocks c WHERE c.stopped IS NULL AND (c.closed_at IS NULL OR c.closed_at > :as_of)
)
"""
    completed = (
        clocks
        + f"""
, done AS (
    SELECT {month} AS month, {_calendar_days(dialect, "c.started", "c.stopped")} / 7.0 AS weeks
    FROM clocks c WHERE c.stopped IS NOT NULL
),
ranked AS (
    SELECT month, weeks, ROW_NUMBER() OVER (PARTITION BY month ORDER BY weeks) AS rn,
           COUNT(*) OVER (PARTITION BY month) AS n
    FROM done
)
SELECT month, COUNT(*) AS pathways,
       MAX(CASE WHEN rn = (n + 1) / 2 THEN weeks END) AS median_weeks,
       MAX(CASE WHEN rn = (92 * n + 99) / 100 THEN weeks END) AS p92_weeks,
       SUM(CASE WHEN weeks <= {RTT_STANDARD_WEEKS} THEN 1 ELSE 0 END) AS within
FROM ranked GROUP BY month ORDER BY month
"""
    )
    params: dict[str, Any] = {"as_of": _time(dialect, as_of), "pathway": pathway}
    # Whole weeks waited, rounded down (PostgreSQL's CAST would round to nearest).
    week = "CAST(FLOOR(weeks) AS INTEGER)" if dialect == "postgresql" else "CAST(weeks AS INTEGER)"
    with store.read() as tx:
        conn = tx.conn
        buckets = conn.execute(
            text(
                clocks
                + f"""
SELECT {week} AS week, COUNT(*) AS patients FROM waiting
GROUP BY {week} ORDER BY week"""
            ),
            params,
        ).all()
        risk = conn.execute(
            text(
                clocks
                + f"""
SELECT patient, pathway, started, weeks FROM waiting WHERE weeks >= {NEAR_BREACH_WEEKS}
ORDER BY weeks DESC, patient"""
            ),
            params,
        ).all()
        months = conn.execute(text(completed), params).all()
        counted = conn.execute(
            text(
                clocks
                + f"""
SELECT COUNT(*) AS incomplete,
       COALESCE(SUM(CASE WHEN weeks <= {RTT_STANDARD_WEEKS} THEN 1 ELSE 0 END), 0) AS within
FROM waiting"""
            ),
            params,
        ).one()
        closed = conn.execute(
            text(
                clocks
                + """
SELECT COUNT(*) FROM clocks c WHERE c.stopped IS NULL AND c.closed_at IS NOT NULL
  AND c.closed_at <= :as_of"""
            ),
            params,
        ).scalar_one()
    by_weeks = {int(b.week): int(b.patients) for b in buckets}
    incomplete, within = int(counted.incomplete), int(counted.within)
    return RttReport(
        as_of=as_of,
        incomplete=incomplete,
        within_standard=within,
        within_pct=round(100 * within / incomplete, 1) if incomplete else None,
        by_weeks=by_weeks,
        at_risk=[
            {
                "patient": r.patient,
                "pathway": r.pathway,
                "weeks": round(float(r.weeks), 1),
                "breached": float(r.weeks) > RTT_STANDARD_WEEKS,
            }
            for r in risk
        ],
        completed_by_month=[
            {
                "month": m.month,
                "pathways": int(m.pathways),
                "median_weeks": round(float(m.median_weeks), 1),
                "p92_weeks": round(float(m.p92_weeks), 1),
                "within_pct": round(100 * int(m.within) / int(m.pathways), 1),
            }
            for m in months
        ],
        closed_without_stop=int(closed),
    )


# --- funnel and outcomes -------------------------------------------------------------------


def funnel(store: Store, catalog: Catalog, *, as_of: datetime, pathway: str | None = None) -> dict[str, Any]:
    """How many enrollments reached each stage, conversion from the stage before (the optional
    imaging stage is left out of the chain), and exits by terminal state and reason."""
    dialect = store.backend
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    params = {"as_of": _time(dialect, as_of), "pathway": pathway}
    with store.read() as tx:
        reached = {
            r.state: int(r.enrollments)
            for r in tx.conn.execute(
                text(f"""
SELECT e.to_state AS state, COUNT(DISTINCT e.enrollment_id) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of {pathway_filter}
GROUP BY e.to_state"""),
                params,
            )
        }
        exits = [
            {"state": r.state, "reason": r.reason, "enrollments": int(r.enrollments)}
            for r in tx.conn.execute(
                text(f"""
SELECT e.to_state AS state, e.reason, COUNT(*) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of AND n.closed_at IS NOT NULL AND e.seq = n.last_seq
  {pathway_filter}
GROUP BY e.to_state, e.reason ORDER BY COUNT(*) DESC, e.to_state"""),
                params,
            )
        ]
    workflows = [w for w in catalog.all() if pathway is None or w.id == pathway]
    terminal = {s.name for w in workflows for s in w.states.values() if s.terminal}
    order: list[str] = []
    for w in workflows:
        for s in w.states.values():
            if not s.terminal and not s.hold and s.name not in order:
                order.append(s.name)
    if order:  # the successful end: a terminal state only the last stage leads to
        order += dict.fromkeys(
            [
                t.dest
                for w in workflows
                for t in w.transitions
                if t.sources == (order[-1],) and t.dest in terminal and t.dest not in order
            ]
        )
    stages = []
    previous: int | None = None
    for name in order:
        count = reached.get(name, 0)
        optional = name == "imaging"
        stages.append(
            {
                "stage": name,
                "reached": count,
                "conversion_pct": None
                if previous in (None, 0) or optional
                else round(100 * count / previous, 1),
            }
        )
        if not optional:
            previous = count
    return {
        "as_of": iso(as_of),
        "stages": stages,
        "exits": [x for x in exits if x["state"] in terminal],
        "closed_by_state": {name: reached.get(name, 0) for name in sorted(terminal)},
    }


def _json_int(dialect: str, column: str, field: str) -> str:
    if dialect == "postgresql":
        return f"(({column})->>'{field}')::numeric"
    return f"CAST(json_extract({column}, '$.{field}') AS REAL)"


def outcomes(store: Store, *, as_of: datetime, pathway: str | None = None) -> dict[str, Any]:
    """For ablated enrollments: the share with a successful 6-month follow-up (the latest
    `follow_up` 150 to 240 calendar days after the first ablation, NRS relief >= 50% from the
    latest baseline on or before its day), mean NRS and NDI change to that follow-up, the
    share gaining 10+ NDI points, and the repeat-ablation rate. Only ablations whose 6-month
    window has closed by `as_of` count for the success share."""
    dialect = store.backend
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    # Calendar days, as the guards count them (CLINICAL.md): a follow-up on day 150 counts
    # whatever the time of day, and so does a baseline recorded on the day of the ablation.
    days = _calendar_days(dialect, "a.ablated", "o.effective_at")
    nrs = _json_int(dialect, "o.data", "nrs")
    ndi = _json_int(dialect, "o.data", "ndi")
    params = {"as_of": _time(dialect, as_of), "pathway": pathway}
    sql = f"""
WITH ablated AS (
    SELECT e.enrollment_id, MIN(e.effective_at) AS ablated
    FROM events e JOIN enrollments n ON n.id = e.enrollment_id
    WHERE e.trigger = 'perform_ablation' AND e.effective_at <= :as_of {pathway_filter}
    GROUP BY e.enrollment_id
),
baseline AS (
    SELECT a.enrollment_id, {nrs} AS nrs, {ndi} AS ndi,
           ROW_NUMBER() OVER (PARTITION BY a.enrollment_id ORDER BY o.effective_at DESC, o.id DESC) AS k
    FROM ablated a JOIN observations o ON o.enrollment_id = a.enrollment_id
    WHERE o.kind = 'baseline' AND o.entered_in_error = :false
      AND {_calendar_days(dialect, "o.effective_at", "a.ablated")} >= 0
),
six AS (
    SELECT a.enrollment_id, {nrs} AS nrs, {ndi} AS ndi,
           ROW_NUMBER() OVER (PARTITION BY a.enrollment_id ORDER BY o.effective_at DESC, o.id DESC) AS k
    FROM ablated a JOIN observations o ON o.enrollment_id = a.enrollment_id
    WHERE o.kind = 'follow_up' AND o.entered_in_error = :false AND o.effective_at <= :as_of
      AND {days} >= 150 AND {days} <= 240
),
joined AS (
    SELECT a.enrollment_id,
           CASE WHEN {_calendar_days(dialect, "a.ablated", ":as_of")} > 240 THEN 1 ELSE 0 END AS closed,
           b.nrs AS b_nrs, b.ndi AS b_ndi, s.nrs AS s_nrs, s.ndi AS s_ndi
    FROM ablated a
    LEFT JOIN baseline b ON b.enrollment_id = a.enrollment_id AND b.k = 1
    LEFT JOIN six s ON s.enrollment_id = a.enrollment_id AND s.k = 1
)
SELECT COUNT(*) AS ablated,
       SUM(closed) AS window_closed,
       SUM(CASE WHEN closed = 1 AND s_nrs IS NOT NULL THEN 1 ELSE 0 END) AS followed_up,
       SUM(CASE WHEN closed = 1 AND s_nrs IS NOT NULL AND b_nrs > 0
                 AND 100 * (b_nrs - s_nrs) >= 50 * b_nrs THEN 1 ELSE 0 END) AS successes,
       AVG(CASE WHEN s_nrs IS NOT NULL THEN s_nrs - b_nrs END) AS nrs_change,
       AVG(CASE WHEN s_ndi IS NOT NULL THEN s_ndi - b_ndi END) AS ndi_change,
       SUM(CASE WHEN s_ndi IS NOT NULL AND b_ndi - s_ndi >= 10 THEN 1 ELSE 0 END) AS ndi_gain,
       SUM(CASE WHEN s_ndi IS NOT NULL THEN 1 ELSE 0 END) AS with_ndi
FROM joined
"""
    repeats = f"""
SELECT COUNT(DISTINCT e.enrollment_id) FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.trigger = 'repeat_ablation' AND e.effective_at <= :as_of {pathway_filter}"""
    with store.read() as tx:
        row = tx.conn.execute(text(sql), {**params, "false": False}).one()
        repeated = int(tx.conn.execute(text(repeats), params).scalar_one())
    ablated = int(row.ablated or 0)
    closed = int(row.window_closed or 0)
    successes = int(row.successes or 0)
    with_ndi = int(row.with_ndi or 0)
    return {
        "as_of": iso(as_of),
        "ablated": ablated,
        "six_month_window_closed": closed,
        "with_six_month_follow_up": int(row.followed_up or 0),
        "successes": successes,
        "success_pct": round(100 * successes / closed, 1) if closed else None,
        "mean_nrs_change": None if row.nrs_change is None else round(float(row.nrs_change), 2),
        "mean_ndi_change": None if row.ndi_change is None else round(float(row.ndi_change), 2),
        "ndi_gain_10_pct": round(100 * int(row.ndi_gain or 0) / with_ndi, 1) if with_ndi else None,
        "repeat_ablations": repeated,
        "repeat_pct": round(100 * repeated / ablated, 1) if ablated else None,
    }
