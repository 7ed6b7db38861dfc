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
from datetime import datetime
from typing import Any

from pathway import reports
from pathway.definitions import diagram
from pathway.definitions.catalog import Catalog
from pathway.domain.definition import Workflow
from pathway.domain.timeutil import utcnow
from pathway.reports import charts
from pathway.reports.series import (
    LAST_WEEK,
    enrollment_counts,
    time_in_state,
    transitions_taken,
    wip_over_time,
)
from pathway.store.repository import Store


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
    rtt = reports.rtt(store, catalog, as_of=as_of, pathway=pathway)
    funnel = reports.funnel(store, catalog, as_of=as_of, pathway=pathway)
    outcomes = reports.outcomes(store, catalog, as_of=as_of, pathway=pathway)
    weeks = time_in_state(store, as_of=as_of, pathway=pathway, since=since, until=until)
    wip = wip_over_time(store, as_of=as_of, pathway=pathway, since=since, until=until)
    moves = transitions_taken(store, as_of=as_of, pathway=pathway)
    opened, still_open = enrollment_counts(store, as_of=as_of, pathway=pathway)
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
            f"Planned care ({_e(_names(sorted(kinds['planned'])))}) starts hidden: click its name to "
            "show it.</p>"
            + charts.wip(
                wip, _ordered([line.state for line in lines], wip.states, kinds["closed"]), kinds["planned"]
            ),
        ),
        (
            "rtt",
            "Referral to treatment",
            f"<p>{_e(_rtt_text(rtt))} The clock runs {_e(rtt.clock_text() or '(no clock declared)')}; "
            "holds do not pause it. Recent months count only the pathways "
            "completed so far, so they look quicker than they will end up.</p>"
            + charts.rtt_months(rtt)
            + charts.rtt_waiting(rtt),
        ),
        (
            "funnel",
            "Funnel",
            "<p>Enrollments that reached each stage, with conversion from the stage before "
            f"(optional stages, here {_e(_names(sorted(kinds['optional'])))}, are left out of the chain).</p>"
            + charts.funnel(funnel)
            + _exits_table(funnel["closed_by_state"]),
        ),
        (
            "outcomes",
            "Outcomes",
            "<p>Of the patients whose first treatment is old enough for its follow-up window to "
            "have closed: how many had a follow-up in the window, how many of those were a "
            "success (the workflow file's measure and threshold), and how many were treated again. "
            "Each share names its numerator and denominator.</p>" + _outcomes_table(outcomes),
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
        "optional": {s.name for s in states if s.optional},
        # planned care as the bottleneck report marks it
        "planned": {line.state for line in lines if line.to_dict().get("planned")},
    }


def _summary(as_of: datetime, opened: int, still_open: int, bottleneck: str, rtt: reports.RttReport) -> str:
    return f"As of {_day(as_of)}: {opened:,} referrals, {still_open:,} still open. {bottleneck} " + _rtt_text(
        rtt
    )


def _rtt_text(rtt: reports.RttReport) -> str:
    return rtt.summary()


def _names(names: list[str]) -> str:
    return ", ".join(sorted(names)) or "none"


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
        "<p class=note>(planned) states are planned care, marked so in the workflow file: "
        "listed, not waiting. The hold is its own line.</p>"
    )
    return (
        f'<table class="bottlenecks"><thead><tr><th>state</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _share(part: int | None, whole: int | None) -> str:
    return "-" if not whole or part is None else f"{part:,} of {whole:,} ({round(100 * part / whole)}%)"


def _outcomes_table(outcomes: dict[str, Any]) -> str:
    rows = []
    for p in outcomes.get("pathways") or []:
        if not p["treated"]:
            rows.append(f"<tr><th>{_e(p['pathway'])}</th><td colspan=5>no treatments yet</td></tr>")
            continue
        window = p.get("window_days") or ["", ""]
        rows.append(
            f"<tr><th>{_e(p['pathway'])} ({_e(p.get('label') or '')}, days {window[0]}-{window[1]})</th>"
            f"<td>{p['treated']:,}</td><td>{p['window_closed']:,}</td>"
            f"<td>{_e(_share(p['successes'], p['with_follow_up']))}</td>"
            f"<td>{_e(_share(p['successes'], p['window_closed']))}</td>"
            f"<td>{_e(_share(p['repeats'], p['treated']))}</td></tr>"
        )
    head = (
        "<tr><th>pathway</th><th>treated</th><th>window closed</th>"
        "<th>successes of those followed up</th><th>successes of all</th><th>treated again</th></tr>"
    )
    return f'<table class="outcomes"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


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
