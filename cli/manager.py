"""What clinic managers and coordinators read: the worklist and the reports."""

from __future__ import annotations

import shutil
from typing import Any

import click

from pathway.service.worklist_kinds import KINDS

from .app import cli, json_option, settings
from .output import emit_csv, emit_json, table, write_page
from .report_text import bottlenecks_text, outcomes_text, rtt_text

SCREEN = 40


@cli.command()
@click.option("--as-of", "as_of", help="As of this date (default now): the patients as they stood then.")
@click.option("--role", "only_role", help="Only steps this role may take (default: everything).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only this kind (repeatable).")
@click.option("--state", help="Only patients in this state.")
@click.option("--pathway", help="Only patients of this pathway.")
@click.option("--due-within", type=click.IntRange(0, 3650), help="Only what is due within DAYS (0: today).")
@click.option(
    "--limit", type=click.IntRange(1), help=f"At most this many patients (text: {SCREEN} by default)."
)
@click.option("--all", "show_all", is_flag=True, help="Every patient (text), not only the most urgent.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@json_option
def worklist(
    as_of: str | None,
    only_role: str | None,
    kinds: tuple[str, ...],
    state: str | None,
    pathway: str | None,
    due_within: int | None,
    limit: int | None,
    show_all: bool,
    as_csv: bool,
    as_json: bool,
) -> None:
    """What to do today, most urgent first, each with the next action and why: new
    referrals to triage, RTT breaches, stays over or near their SLA, RTT at risk,
    follow-ups due or overdue, steps ready, steps blocked by missing data or an unmet
    criterion, guard faults. Waiting as planned (a routine state, a procedure not yet
    done) is not an item. The table shows one line per patient (its most urgent item,
    +N for the rest); --json and --csv give every item."""
    options = {"kinds": kinds, "state": state, "pathway": pathway, "due_within": due_within}
    items = settings().backend().worklist(as_of=as_of, role=only_role, **options)
    if as_json or as_csv:
        items = items[:limit] if limit else items
        if as_json:
            emit_json(items)
        else:
            fields = ["patient", "pathway", "state", "kind", "action", "trigger", "urgency", "due"]
            emit_csv(items, fields)
        return
    if not items:
        click.echo("nothing needs action")
        return
    by_patient: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:  # most urgent first, so each patient's first item is its most urgent
        by_patient.setdefault((item["patient"], item["pathway"]), []).append(item)
    shown = list(by_patient.values())
    cap = None if show_all else (limit or SCREEN)
    rows = [
        [
            group[0]["patient"],
            group[0]["pathway"],
            group[0]["state"],
            group[0]["kind"],
            group[0]["action"] + (f"  (+{len(group) - 1})" if len(group) > 1 else ""),
        ]
        for group in (shown[:cap] if cap else shown)
    ]
    width = shutil.get_terminal_size((120, 24)).columns
    click.echo(fit(table(["patient", "pathway", "state", "what", "next action"], rows), width))
    if cap and len(shown) > cap:
        click.echo(
            f"{cap} of {len(shown)} patients ({len(items)} items): --all for everyone; "
            "--kind, --state, --pathway, --due-within narrow it; --json gives every item"
        )


def fit(text: str, width: int) -> str:
    """Lines cut to the terminal's width (the action, last, is what is cut)."""
    return "\n".join(
        line if len(line) <= width else line[: max(width - 3, 20)] + "..." for line in text.split("\n")
    )


@cli.group()
def report() -> None:
    """Reports for clinic managers, computed in the database."""


@report.command("bottlenecks")
@click.option("--pathway", help="Only this pathway.")
@click.option("--since", help="Only stays that began on or after this date.")
@click.option("--until", help="Only stays that began on or before this date.")
@click.option("--as-of", "as_of", help="Judge as of this date (default now): later events ignored.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@json_option
def report_bottlenecks(
    pathway: str | None, since: str | None, until: str | None, as_of: str | None, as_csv: bool, as_json: bool
) -> None:
    """Where patients wait: per state, entries, exits, patients in it now, time in state for
    completed stays (median, p90, max) and for stays still open (censored), SLA breaches and
    patient-days, ranked, with the bottleneck named. Holds are their own line; states the
    workflow marks `planned` (recovery, follow-up) are listed last and never named."""
    result = settings().clinic().report_bottlenecks(pathway=pathway, since=since, until=until, as_of=as_of)
    data = result.to_dict()
    lines = [*data["states"], *([data["hold"]] if data["hold"] else [])]
    if as_json:
        emit_json(data)
        return
    columns = [
        "state",
        "sla_days",
        "entries",
        "exits",
        "wip",
        "median_days",
        "p90_days",
        "max_days",
        "open_median_days",
        "open_p90_days",
        "breaches_completed",
        "breaches_open",
        "patient_days",
        "planned",
    ]
    if as_csv:
        emit_csv(lines, columns)
        return
    click.echo("\n".join(bottlenecks_text(data)))


@report.command("rtt")
@click.option("--pathway", help="Only this pathway.")
@click.option("--as-of", "as_of", help="Judge as of this date (default now).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the completed-pathway months as CSV.")
@json_option
def report_rtt(pathway: str | None, as_of: str | None, as_csv: bool, as_json: bool) -> None:
    """Referral to treatment: the clock runs from referral to the first ablation or a decision
    not to treat (holds do not pause it). Incomplete pathways against the 18-week standard
    (92% target), those at or near breach (16+ weeks), and completed pathways by month of
    referral (median and p92 weeks)."""
    data = settings().clinic().report_rtt(pathway=pathway, as_of=as_of).to_dict()
    if as_json:
        emit_json(data)
        return
    if as_csv:
        emit_csv(data["completed_by_month"], ["month", "pathways", "median_weeks", "p92_weeks", "within_pct"])
        return
    click.echo("\n".join(rtt_text(data)))


@report.command("funnel")
@click.option("--pathway", help="Only this pathway.")
@click.option("--as-of", "as_of", help="As of this date (default now).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the stages as CSV.")
@json_option
def report_funnel(pathway: str | None, as_of: str | None, as_csv: bool, as_json: bool) -> None:
    """How many reached each stage, conversion between stages, and exits by terminal state
    and reason."""
    data = settings().clinic().report_funnel(pathway=pathway, as_of=as_of)
    if as_json:
        emit_json(data)
        return
    if as_csv:
        emit_csv(data["stages"], ["stage", "reached", "conversion_pct"])
        return
    click.echo(
        table(
            ["stage", "reached", "conversion"],
            [
                [s["stage"], s["reached"], "" if s["conversion_pct"] is None else f"{s['conversion_pct']}%"]
                for s in data["stages"]
            ],
        )
    )
    click.echo("")
    click.echo(
        table(
            ["exit", "reason", "enrollments"],
            [[x["state"], x["reason"] or "", x["enrollments"]] for x in data["exits"]],
        )
    )


@report.command("outcomes")
@click.option("--pathway", help="Only this pathway.")
@click.option("--as-of", "as_of", help="As of this date (default now).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row).")
@json_option
def report_outcomes(pathway: str | None, as_of: str | None, as_csv: bool, as_json: bool) -> None:
    """Share of ablated patients with a successful 6-month follow-up (NRS relief >= 50%,
    follow-up 150-240 days after the ablation), NRS and NDI change, repeat-ablation rate."""
    data = settings().clinic().report_outcomes(pathway=pathway, as_of=as_of)
    if as_json:
        emit_json(data)
        return
    if as_csv:
        emit_csv([data], [k for k, v in data.items() if not isinstance(v, list | dict)])
        return
    click.echo("\n".join(outcomes_text(data)))


@report.command("html")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Write the page to FILE (replaced if it exists; - for standard output).",
)
@click.option("--pathway", help="Only this pathway.")
@click.option(
    "--since",
    help="Bottlenecks and time in state: only stays that began on or after this date; "
    "work in progress is charted from it.",
)
@click.option(
    "--until",
    help="Bottlenecks and time in state: only stays that began on or before this date; "
    "work in progress is charted up to it.",
)
@click.option("--as-of", "as_of", help="Judge as of this date (default now): later events ignored.")
@json_option
def report_html(
    output: str, pathway: str | None, since: str | None, until: str | None, as_of: str | None, as_json: bool
) -> None:
    """One self-contained HTML page for clinic managers, to open offline in a browser: a
    summary, the bottleneck table, time in state per stage, work in progress over time,
    referral to treatment by month, the funnel and the pathway diagram. Aggregates only: no
    patient is named. Charts are drawn by plotly.js, which is embedded in the file."""
    page = settings().clinic().report_html(pathway=pathway, since=since, until=until, as_of=as_of)
    write_page(output, page)
    if output == "-":
        return
    if as_json:
        emit_json({"wrote": output, "bytes": len(page.encode())})
    else:
        click.echo(f"wrote {output}")
