"""The HTML report: one self-contained page a clinic manager opens offline in a browser.

Every number is aggregated in the database: the bottleneck, referral-to-treatment and
funnel reports of `pathway.reports`, plus three series computed here by GROUP BY on both
SQLite and PostgreSQL: time in state in weekly buckets, work in progress as of each week,
and how many enrollments took each transition. Charts are Plotly figures and plotly.js is
embedded in the page, so nothing is loaded from the network. The page holds aggregates
only: no patient identifier, name or free-text reason.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from pathway import reports
from pathway.definitions import diagram
from pathway.definitions.catalog import Catalog
from pathway.domain.definition import Workflow
from pathway.domain.timeutil import utcnow
from pathway.reports import charts
from pathway.store.fastpath import sqlite_time
from pathway.store.repository import Store

#: Stays of a year or more share the last weekly bucket.
LAST_WEEK = 52
#: The WIP chart has at most about this many points (a week apart, or a multiple of a week).
WIP_POINTS = 120


def _days(dialect: str, start: str, end: str) -> str:
    """SQL for the fractional days from `start` to `end` (as in `pathway.reports`)."""
    if dialect == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"
    return f"(julianday({end}) - julianday({start}))"


def _whole(dialect: str, days: str, unit_days: int) -> str:
    """SQL for how many whole `unit_days` fit in `days` (never negative), counted to the
    millisecond: fractional days are inexact in floating point, so a stay of exactly 7 days
    could come out as 6.9999999999 and fall into the week before."""
    unit = unit_days * 86_400_000
    if dialect == "postgresql":  # CAST would round, not floor
        return f"CAST(FLOOR(ROUND(CAST({days} AS NUMERIC) * 86400000) / {unit}) AS INTEGER)"
    return f"(CAST(ROUND({days} * 86400000) AS INTEGER) / {unit})"  # integer division


def _time(dialect: str, value: datetime | None) -> Any:
    """A time as the database compares it (SQLite stores UTC text)."""
    return sqlite_time(value) if dialect == "sqlite" and value is not None else value


# --- the series this page adds to the reports ----------------------------------------------


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
    params = {k: _time(dialect, v) if isinstance(v, datetime) else v for k, v in params.items()}
    window = " AND pathway_id = :pathway" if pathway else ""
    window += " AND {entered} >= :since" if since is not None else ""
    window += " AND {entered} <= :until" if until is not None else ""
    in_stays, in_enrollments = window.format(entered="entered_at"), window.format(entered="entered_state_at")

    def week(days: str) -> str:
        bucket = _whole(dialect, days, 7)
        return f"CASE WHEN {bucket} >= {LAST_WEEK} THEN {LAST_WEEK} ELSE {bucket} END"

    completed = (
        f"SELECT state, {week('days')} AS week, COUNT(*) AS stays FROM stays "
        f"WHERE left_at <= :as_of{in_stays} GROUP BY state, {week('days')}"
    )
    # Open at as_of: every open enrollment's current stay, and stays that ended after as_of.
    ages = (
        f"SELECT state, {_days(dialect, 'entered_state_at', ':as_of')} AS age FROM enrollments "
        f"WHERE closed_at IS NULL AND entered_state_at <= :as_of{in_enrollments} "
        f"UNION ALL SELECT state, {_days(dialect, 'entered_at', ':as_of')} FROM stays "
        f"WHERE left_at > :as_of AND entered_at <= :as_of{in_stays}"
    )
    still_open = (
        f"SELECT o.state, {week('o.age')} AS week, COUNT(*) AS stays FROM ({ages}) o "
        f"GROUP BY o.state, {week('o.age')}"
    )
    result: dict[str, StayWeeks] = {}
    with store.read() as tx:
        for sql, field in ((completed, "completed"), (still_open, "still_open")):
            for row in tx.conn.execute(text(sql), params):
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
        f"WHERE e.effective_at <= :end {pathway_filter}"
    )
    params: dict[str, Any] = {"end": _time(dialect, end), "pathway": pathway}
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
            f"ELSE {last} - {_whole(dialect, _days(dialect, 'e.effective_at', ':end'), step)} END"
        )
        sql = f"""
WITH moves AS (
    SELECT e.to_state AS state, {point} AS k, 1 AS delta {moves_from}
      AND (e.from_state IS NULL OR e.from_state <> e.to_state)
    UNION ALL
    SELECT e.from_state, {point}, -1 {moves_from}
      AND e.from_state IS NOT NULL AND e.from_state <> e.to_state
)
SELECT state, k, SUM(SUM(delta)) OVER (PARTITION BY state ORDER BY k) AS wip
FROM moves GROUP BY state, k ORDER BY state, k"""
        rows = tx.conn.execute(text(sql), {**params, "start": _time(dialect, start)}).all()
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
    sql = f"""
SELECT e.from_state AS source, e.to_state AS target, COUNT(DISTINCT e.enrollment_id) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of AND (e.from_state IS NULL OR e.from_state <> e.to_state) {pathway_filter}
GROUP BY e.from_state, e.to_state"""
    with store.read() as tx:
        rows = tx.conn.execute(text(sql), {"as_of": _time(dialect, as_of), "pathway": pathway}).all()
    return sorted(((r.source, r.target, int(r.enrollments)) for r in rows), key=lambda r: (r[0] or "", r[1]))


def _enrollment_counts(store: Store, *, as_of: datetime, pathway: str | None) -> tuple[int, int]:
    """Enrollments opened by `as_of`, and those still open then."""
    pathway_filter = "AND pathway_id = :pathway" if pathway else ""
    sql = f"""
SELECT COUNT(*) AS opened,
       COALESCE(SUM(CASE WHEN closed_at IS NULL OR closed_at > :as_of THEN 1 ELSE 0 END), 0) AS still_open
FROM enrollments WHERE opened_at <= :as_of {pathway_filter}"""
    with store.read() as tx:
        row = tx.conn.execute(text(sql), {"as_of": _time(store.backend, as_of), "pathway": pathway}).one()
    return int(row.opened), int(row.still_open)


# --- the page ------------------------------------------------------------------------------


def render(
    store: Store,
    catalog: Catalog,
    *,
    as_of: datetime,
    pathway: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole report as one HTML page. `since`/`until` choose the stays of the bottleneck
    table and the time-in-state charts (as `reports.bottlenecks` does) and the span of the WIP
    chart; referral to treatment, the funnel and the diagram cover everything up to `as_of`."""
    bottlenecks = reports.bottlenecks(store, catalog, as_of=as_of, pathway=pathway, since=since, until=until)
    rtt = reports.rtt(store, as_of=as_of, pathway=pathway)
    funnel = reports.funnel(store, catalog, as_of=as_of, pathway=pathway)
    weeks = time_in_state(store, as_of=as_of, pathway=pathway, since=since, until=until)
    wip = wip_over_time(store, as_of=as_of, pathway=pathway, since=since, until=until)
    moves = transitions_taken(store, as_of=as_of, pathway=pathway)
    opened, still_open = _enrollment_counts(store, as_of=as_of, pathway=pathway)
    workflows = [catalog.get(i) for i in catalog.ids() if pathway is None or i == pathway]
    lines = [*bottlenecks.states, *([bottlenecks.hold] if bottlenecks.hold else [])]
    kinds = _state_kinds(workflows, lines)

    scope = f"pathway {pathway}" if pathway else "all pathways"
    window = _window_text(since, until)
    sections = [
        (
            "summary",
            "Summary",
            f"<p class=lead>{_e(_summary(as_of, opened, still_open, bottlenecks.summary, rtt))}</p>",
        ),
        (
            "bottlenecks",
            "Bottlenecks",
            f"<p>Where patients wait, per state{_e(window)}: stays completed and still open at "
            f"{_e(_day(as_of))}; days in state; SLA breaches; patient-days (all waiting, completed "
            "or not). Ranked by patient-days.</p>"
            + _bottleneck_table(lines, bottlenecks.hold, kinds["planned"]),
        ),
        (
            "time-in-state",
            "Time in state",
            f"<p>How long stays last, in whole weeks{_e(window)}: completed stays by their length, "
            f"stays still open by their age so far; {LAST_WEEK}+ weeks share the last bar. "
            "The dashed line is the state's SLA.</p>"
            + charts.time_in_state(
                [line.state for line in lines if line.state in weeks],
                weeks,
                {line.state: line.sla_days for line in lines},
                last_week=LAST_WEEK,
            ),
        ),
        (
            "wip",
            "Work in progress",
            "<p>Enrollments in each state as of each date; closed pathways leave the count. "
            "Planned care (recovery, follow-up) starts hidden: click its name to show it.</p>"
            + charts.wip(
                wip, _ordered([line.state for line in lines], wip.states, kinds["closed"]), kinds["planned"]
            ),
        ),
        (
            "rtt",
            "Referral to treatment",
            f"<p>{_e(_rtt_text(rtt))} The clock runs from referral to the first ablation or a "
            "decision not to treat; holds do not pause it. Recent months count only the pathways "
            "completed so far, so they look quicker than they will end up.</p>"
            + charts.rtt_months(rtt)
            + charts.rtt_waiting(rtt),
        ),
        (
            "funnel",
            "Funnel",
            "<p>Enrollments that reached each stage, with conversion from the stage before "
            "(optional imaging is left out of the chain).</p>"
            + charts.funnel(funnel)
            + _exits_table(funnel["closed_by_state"]),
        ),
        (
            "diagram",
            "The pathway",
            "<p>Every move between states, weighted by how many enrollments made it. "
            "Colours: blue waiting, green planned care, orange hold, grey closed.</p>"
            + charts.pathway_flow(moves, kinds)
            + "".join(_mermaid(w) for w in workflows),
        ),
    ]
    return _PAGE.format(
        title=_e(f"Pathway report: {scope}, as of {_day(as_of)}"),
        plotly=charts.plotly_js(),
        nav=" · ".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections),
        generated=_e((generated_at or utcnow()).strftime("%Y-%m-%d %H:%M UTC")),
        body="\n".join(
            f'<section id="{key}"><h2>{_e(title)}</h2>\n{body}\n</section>' for key, title, body in sections
        ),
    )


def _ordered(ranked: list[str], present: Any, closed: set[str]) -> list[str]:
    """The states in `present`, in the bottleneck report's order, then the rest by name;
    closed (terminal) states left out."""
    rest = sorted(s for s in present if s not in ranked and s not in closed)
    return [s for s in ranked if s in present] + rest


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _window_text(since: datetime | None, until: datetime | None) -> str:
    if since and until:
        return f" (stays begun {_day(since)} to {_day(until)})"
    if since:
        return f" (stays begun on or after {_day(since)})"
    if until:
        return f" (stays begun on or before {_day(until)})"
    return ""


def _state_kinds(workflows: list[Workflow], lines: list[reports.StateLine]) -> dict[str, set[str]]:
    states = [s for w in workflows for s in w.states.values()]
    return {
        "closed": {s.name for s in states if s.terminal},
        "hold": {s.name for s in states if s.hold},
        # planned care as the bottleneck report marks it
        "planned": {line.state for line in lines if line.to_dict().get("planned")},
    }


def _summary(as_of: datetime, opened: int, still_open: int, bottleneck: str, rtt: reports.RttReport) -> str:
    return f"As of {_day(as_of)}: {opened:,} referrals, {still_open:,} still open. {bottleneck} " + _rtt_text(
        rtt
    )


def _rtt_text(rtt: reports.RttReport) -> str:
    if rtt.within_pct is None:
        return "Referral to treatment: nobody is waiting."
    verdict = "meets" if rtt.within_pct >= reports.RTT_TARGET_PCT else "misses"
    return (
        f"Referral to treatment: {rtt.incomplete:,} waiting, {rtt.within_pct}% within "
        f"{reports.RTT_STANDARD_WEEKS} weeks ({verdict} the {reports.RTT_TARGET_PCT:.0f}% standard); "
        f"{len(rtt.at_risk):,} at or near breach ({reports.NEAR_BREACH_WEEKS}+ weeks)."
    )


#: (column, heading) of the bottleneck table, in the order `pathway report bottlenecks` prints.
BOTTLENECK_COLUMNS = (
    ("sla_days", "SLA days"),
    ("entries", "entered"),
    ("exits", "left"),
    ("wip", "waiting now"),
    ("median_days", "median days"),
    ("p90_days", "p90 days"),
    ("max_days", "max days"),
    ("open_median_days", "open: median days"),
    ("open_p90_days", "open: p90 days"),
    ("breaches_completed", "over SLA (completed)"),
    ("breaches_open", "over SLA now"),
    ("patient_days", "patient-days"),
)


def cell_text(column: str, value: Any) -> str:
    """How the bottleneck table shows a value: days to one decimal, patient-days whole."""
    if value is None:
        return "–"
    if column == "patient_days":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return f"{value:,}"


def _bottleneck_table(
    lines: list[reports.StateLine], hold: reports.StateLine | None, planned: set[str]
) -> str:
    if not lines:
        return "<p class=empty>No stays recorded yet.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for _, h in BOTTLENECK_COLUMNS)
    rows = []
    for line in lines:
        label = (
            line.state + (" (planned)" if line.state in planned else "") + (" (hold)" if line is hold else "")
        )
        kind = "hold" if line is hold else "planned" if line.state in planned else "waiting"
        cells = "".join(
            f'<td data-column="{c}">{_e(cell_text(c, getattr(line, c)))}</td>' for c, _ in BOTTLENECK_COLUMNS
        )
        rows.append(f'<tr class="{kind}" data-state="{_e(line.state)}"><th>{_e(label)}</th>{cells}</tr>')
    note = (
        "<p class=note>(planned) states are planned care, such as recovery and follow-up: "
        "listed, not waiting. The hold is its own line.</p>"
    )
    return (
        f'<table class="bottlenecks"><thead><tr><th>state</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _exits_table(closed_by_state: dict[str, int]) -> str:
    rows = "".join(
        f'<tr data-state="{_e(state)}"><th>{_e(state)}</th><td>{count:,}</td></tr>'
        for state, count in sorted(closed_by_state.items(), key=lambda item: -item[1])
    )
    return (
        "<h3>Closed pathways by how they ended</h3>"
        f'<table class="exits"><thead><tr><th>ended</th><th>enrollments</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        "<p class=note>Free-text reasons are left out of this page; "
        "<code>pathway report funnel</code> lists them.</p>"
    )


def _mermaid(workflow: Workflow) -> str:
    return (
        f"<details><summary>Mermaid source of {_e(workflow.title)} "
        f"({_e(workflow.id)} v{workflow.version})</summary>"
        f"<pre>{_e(diagram.mermaid(workflow))}</pre></details>"
    )


# The error recorder runs first: any script error or console.error lands in
# <html data-errors>, where a reader (or the headless-browser test) can see it.
_PAGE = """<!DOCTYPE html>
<html lang="en" data-errors="">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>
(function () {{
  var root = document.documentElement, seen = [];
  function note(message) {{ seen.push(String(message)); root.setAttribute("data-errors", seen.join("\\n")); }}
  window.addEventListener("error", function (e) {{ note(e.message || "error"); }});
  window.addEventListener("unhandledrejection", function (e) {{
    note("unhandled rejection: " + ((e.reason && e.reason.message) || e.reason));
  }});
  var original = console.error;
  console.error = function () {{
    note(Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  }};
}}());
</script>
<script>window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>
<script>{plotly}</script>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1200px; margin: 0 auto; padding: 1rem 2rem 4rem; line-height: 1.45; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
h2 {{ border-bottom: 2px solid #4c78a8; padding-bottom: .2rem; margin-top: 2.5rem; }}
nav, .meta, .note {{ color: #555; font-size: .9rem; }}
.lead {{ font-size: 1.1rem; background: #f3f6fa; padding: .8rem 1rem; border-left: 4px solid #4c78a8; }}
table {{ border-collapse: collapse; font-size: .9rem; margin: .5rem 0; }}
th, td {{ border: 1px solid #ddd; padding: .3rem .5rem; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
thead th {{ background: #f3f6fa; vertical-align: bottom; }}
tbody th {{ text-align: left; font-weight: 600; }}
tr.planned th, tr.planned td {{ color: #3a7a35; }}
tr.hold th, tr.hold td {{ background: #fff5eb; }}
pre {{ background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: .8rem; }}
.chart {{ margin: 1rem 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="meta">Made by <code>pathway report html</code> on {generated}.
Aggregates only: no patient is named.</p>
<nav>{nav}</nav>
{body}
</body>
</html>
"""
