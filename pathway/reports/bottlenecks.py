"""The bottleneck report: where patients wait, for how long, against each state's SLA.

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
from pathway.reports import sql
from pathway.store.repository import Store


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
    params = {k: sql.bind_time(dialect, v) if isinstance(v, datetime) else v for k, v in params.items()}
    limit = "CASE state " + " ".join(f"WHEN :st_{i} THEN :sla_{i}" for i in range(len(sla_of.days)))
    limit = limit + " END" if sla_of.days else "NULL"
    # An open stay is over SLA when it began before midnight (clinic time) of as_of's date minus the
    # SLA: more calendar days than the SLA, as `status` counts, with no date arithmetic per row.
    cut = "CASE state " + " ".join(f"WHEN :st_{i} THEN :cut_{i}" for i in range(len(sla_of.days)))
    cut = cut + " END" if sla_of.days else "NULL"
    zone = store.zone
    today = as_of.astimezone(zone).date()
    for i, (state, days) in enumerate(sorted(sla_of.days.items())):
        params[f"st_{i}"], params[f"sla_{i}"] = state, days
        midnight = datetime.combine(today - timedelta(days=days), time(0), tzinfo=zone).astimezone(UTC)
        params[f"cut_{i}"] = sql.bind_time(dialect, midnight)
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
        age = sql.days(dialect, entered, ":as_of")
        return (
            f"SELECT state, COUNT(*) AS stays, SUM({age}) AS total, "
            f"SUM(CASE WHEN {entered} < {cut} THEN 1 ELSE 0 END) AS breaches "
            f"FROM {table} WHERE {where} GROUP BY state"
        )

    with store.read() as tx:

        def run(statement: str, **extra: Any) -> Any:
            return tx.conn.execute(text(statement), {**params, **extra})

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
            age_then = sql.days(dialect, "entered_at", ":as_of")
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

        def nearest(walk: str, state: str, k: int, n: int, *, newest_first: bool = False) -> float:
            """The k-th smallest of n values, walking an index from whichever end is nearer.
            `walk` ends in ORDER BY <key> {direction} LIMIT 1 OFFSET :k; the key runs the
            other way from the value when `newest_first` (a stay's age against its entry)."""
            ascending = k <= (n + 1) // 2
            query = walk.format(direction="ASC" if ascending != newest_first else "DESC")
            return float(run(query, state=state, k=k - 1 if ascending else n - k).scalar_one())

        # Completed stays: a walk along the (state, days) key to the rank.
        by_length = (
            f"SELECT days FROM stays WHERE state = :state AND {completed} "
            "ORDER BY days {direction} LIMIT 1 OFFSET :k"
        )
        completed_lines: dict[str, tuple[float, float, float, int]] = {}
        by_dates = sql.calendar_days(dialect, "entered_at", "left_at", zone)
        for state, row in done.items():
            n = int(row.stays)
            sla = sla_of.days.get(state)
            # More calendar days than the SLA: certainly so from SLA + 1 days of elapsed time,
            # never at or under the SLA; between the two the dates decide. A key range either way.
            breaches = (
                run(
                    f"SELECT COUNT(*) FROM stays WHERE state = :state AND days > :sla AND {completed} "
                    # (2 hours' margin: a day of a change to or from summer time is 23 or 25 h)
                    f"AND (days >= :sla + 1.0834 OR {by_dates} > :sla)",
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
        age = sql.days(dialect, "entered", ":as_of")
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
