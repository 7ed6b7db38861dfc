"""The charts of the HTML report, as Plotly figures turned into HTML fragments.

Each function takes numbers already aggregated by the database and returns one
`<div class="chart">` (or a sentence when there is nothing to draw). plotly.js itself is
embedded once per page (`plotly_js`), so the page works offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from pathway import reports

if TYPE_CHECKING:
    from pathway.reports.series import StayWeeks, WipSeries

COMPLETED, STILL_OPEN, OVER, NEAR = "#4c78a8", "#f58518", "#e45756", "#eeca3b"
COLOURS = {
    "waiting": "#4c78a8",
    "planned": "#54a24b",
    "hold": "#f58518",
    "closed": "#9d9d9d",
    "new": "#333333",
}
CONFIG = {"displaylogo": False, "responsive": True}
COLUMNS = 3  # time-in-state small multiples per row


def plotly_js() -> str:
    """plotly.js, minified, to inline in a <script> (about 4.8 MB)."""
    return str(get_plotlyjs())


def _html(figure: Any, key: str, height: int, *, margin: int = 60) -> str:
    figure.update_layout(
        template="plotly_white", height=height, margin={"l": margin, "r": margin // 2, "t": 50, "b": 50}
    )
    div = pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=f"chart-{key}", config=CONFIG)
    return f'<div class="chart">{div}</div>'


def _nothing(sentence: str) -> str:
    return f"<p class=empty>{sentence}</p>"


def time_in_state(
    states: list[str], weeks: dict[str, StayWeeks], slas: dict[str, int | None], *, last_week: int
) -> str:
    """Small multiples, one per state: stays by weeks in the state, completed stacked on open
    (the bucket `last_week` holds every longer stay)."""
    if not states:
        return _nothing("No stays recorded yet.")
    rows = (len(states) + COLUMNS - 1) // COLUMNS
    figure = make_subplots(
        rows=rows,
        cols=COLUMNS,
        subplot_titles=states,
        horizontal_spacing=0.06,
        vertical_spacing=min(0.12, 0.5 / rows),
    )
    for i, state in enumerate(states):
        row, col = i // COLUMNS + 1, i % COLUMNS + 1
        for name, counts, colour in (
            ("completed stays", weeks[state].completed, COMPLETED),
            ("still open (age so far)", weeks[state].still_open, STILL_OPEN),
        ):
            figure.add_trace(
                go.Bar(
                    x=[k + 0.5 for k in sorted(counts)],
                    y=[counts[k] for k in sorted(counts)],
                    width=1,
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0,
                    marker={"color": colour, "line": {"color": "white", "width": 0.5}},
                    customdata=[
                        f"{k}+ weeks" if k >= last_week else f"{k}–{k + 1} weeks" for k in sorted(counts)
                    ],
                    hovertemplate="%{customdata}: %{y} stays<extra>" + name + "</extra>",
                ),
                row=row,
                col=col,
            )
        sla = slas.get(state)
        if sla:
            figure.add_vline(x=sla / 7, row=row, col=col, line={"dash": "dash", "color": "#c00", "width": 1})
    figure.update_layout(barmode="stack", legend={"orientation": "h", "y": 1.0 + 0.25 / rows, "x": 0})
    figure.update_xaxes(tickmode="array", tickvals=list(range(0, last_week + 1, 4)), rangemode="tozero")
    figure.update_xaxes(title_text="weeks in state", row=rows)
    return _html(figure, "time-in-state", 90 + 230 * rows)


def _weeks(k: int, last_week: int) -> str:
    return f"{k}+ weeks" if k >= last_week else f"{k}–{k + 1} weeks"


def wip(series: WipSeries, states: list[str], hidden: set[str]) -> str:
    """One line per state: enrollments in it as of each date. States in `hidden` start hidden
    (a click on the legend shows them)."""
    if not series.dates or not states:
        return _nothing("No enrollments yet.")
    figure = go.Figure(
        [
            go.Scatter(
                x=[d.strftime("%Y-%m-%d") for d in series.dates],
                y=list(series.states[state]),
                name=state,
                mode="lines",
                line={"shape": "hv", "width": 2},
                visible="legendonly" if state in hidden else True,
            )
            for state in states
        ]
    )
    figure.update_layout(hovermode="x unified", yaxis_title="enrollments in the state", xaxis_type="date")
    return _html(figure, "wip", 460)


def rtt_months(rtt: reports.RttReport) -> str:
    """Completed pathways by month of referral: share within the standard, median and the
    target percentile of weeks."""
    months = rtt.completed_by_month
    if not months:
        return _nothing("No completed pathways yet.")
    x = [m["month"] for m in months]
    standard, target = rtt.standard_weeks, rtt.target_pct
    within = f"within {standard} weeks" if standard is not None else "within their standard"
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=[
            f"Completed pathways treated {within}, by month of referral",
            f"Weeks from referral to treatment: median and {rtt.percentile:g}th percentile",
        ],
    )
    figure.add_trace(
        go.Bar(
            x=x,
            y=[m["within_pct"] for m in months],
            name=f"% {within}",
            marker={"color": [COMPLETED if m["within_pct"] >= (target or 0) else OVER for m in months]},
            customdata=[m["pathways"] for m in months],
            hovertemplate="%{x}: %{y}% of %{customdata} pathways<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if target is not None:
        figure.add_hline(y=target, row=1, col=1, line={"dash": "dash", "color": "#c00", "width": 1})
    percentile = f"{rtt.percentile:g}th percentile"
    for key, name, colour in (("median_weeks", "median", COMPLETED), ("percentile_weeks", percentile, OVER)):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[m[key] for m in months],
                name=f"{name} weeks",
                mode="lines+markers",
                line={"color": colour},
            ),
            row=2,
            col=1,
        )
    if standard is not None:
        figure.add_hline(y=standard, row=2, col=1, line={"dash": "dash", "color": "#c00", "width": 1})
    figure.update_xaxes(type="category")
    figure.update_yaxes(title_text="% within standard", range=[0, 105], row=1, col=1)
    figure.update_yaxes(title_text="weeks", rangemode="tozero", row=2, col=1)
    figure.update_layout(legend={"orientation": "h", "y": -0.12})
    return _html(figure, "rtt-months", 640)


def rtt_waiting(rtt: reports.RttReport) -> str:
    """Pathways still waiting by whole weeks since referral, coloured near and over breach."""
    if not rtt.by_weeks:
        return _nothing("Nobody is waiting.")
    weeks = sorted(rtt.by_weeks)
    standard, near = rtt.standard_weeks or 10**6, rtt.at_risk_weeks or 10**6
    figure = go.Figure(
        go.Bar(
            x=[k + 0.5 for k in weeks],
            y=[rtt.by_weeks[k] for k in weeks],
            width=1,
            marker={
                "color": [OVER if k >= standard else NEAR if k >= near else COMPLETED for k in weeks],
                "line": {"color": "white", "width": 0.5},
            },
            customdata=[f"{k}–{k + 1} weeks" for k in weeks],
            hovertemplate="%{customdata}: %{y} waiting<extra></extra>",
        )
    )
    title = "Waiting now, by weeks since referral"
    if rtt.standard_weeks is not None:
        figure.add_vline(x=standard, line={"dash": "dash", "color": "#c00", "width": 1})
        title += f" (the dashed line is {standard} weeks)"
    figure.update_layout(
        title=title,
        xaxis_title="weeks since referral",
        yaxis_title="pathways",
    )
    return _html(figure, "rtt-waiting", 380)


def funnel(report: dict[str, Any]) -> str:
    """Enrollments reaching each stage, with conversion from the stage before."""
    stages = report["stages"]
    if not stages or not any(s["reached"] for s in stages):
        return _nothing("No enrollments yet.")
    figure = go.Figure(
        go.Funnel(
            y=[s["stage"] + (" (optional)" if s.get("optional") else "") for s in stages],
            x=[s["reached"] for s in stages],
            text=[
                "" if s["conversion_pct"] is None else f"{s['conversion_pct']}% of the stage before"
                for s in stages
            ],
            textinfo="value+text",
            marker={"color": COMPLETED},
            hovertemplate="%{y}: %{x} enrollments<extra></extra>",
        )
    )
    return _html(figure, "funnel", 80 + 50 * len(stages))


def pathway_flow(moves: Iterable[tuple[str | None, str, int]], kinds: dict[str, set[str]]) -> str:
    """A Sankey diagram of the moves enrollments made between states, weighted by how many."""
    moves = [m for m in moves if m[2] > 0]
    if not moves:
        return _nothing("No moves recorded yet.")
    new = "new referral"
    nodes: list[str] = []
    for source, target, _ in moves:
        for name in (source or new, target):
            if name not in nodes:
                nodes.append(name)
    index = {name: i for i, name in enumerate(nodes)}

    def kind(name: str) -> str:
        if name == new:
            return "new"
        for key in ("closed", "hold", "planned"):
            if name in kinds.get(key, set()):
                return key
        return "waiting"

    colours = [COLOURS[kind(name)] for name in nodes]
    figure = go.Figure(
        go.Sankey(
            node={"label": nodes, "color": colours, "pad": 18, "thickness": 16},
            link={
                "source": [index[source or new] for source, _, _ in moves],
                "target": [index[target] for _, target, _ in moves],
                "value": [count for _, _, count in moves],
                "color": [_translucent(colours[index[source or new]]) for source, _, _ in moves],
                "hovertemplate": "%{source.label} → %{target.label}: %{value} enrollments<extra></extra>",
            },
        )
    )
    figure.update_layout(font={"size": 11})
    return _html(figure, "diagram", 620, margin=10)


def _translucent(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.35)"
