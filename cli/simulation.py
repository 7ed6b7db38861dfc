"""Making demo and synthetic patients: `pathway demo` and `pathway simulate`."""

from __future__ import annotations

import os
import sys

import click

from .app import cli, json_option, settings
from .output import emit_json, status_text, write_page

DEMO_DB = "sqlite:///demo.db"


@cli.command()
@click.option(
    "--cohort",
    type=click.IntRange(0),
    default=2000,
    show_default=True,
    help="Also simulate this many patients over two years (0: only the scripted ones).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Write the HTML report here (default: beside a SQLite database, with .html; else demo.html).",
)
@json_option
def demo(cohort: int, html_path: str | None, as_json: bool) -> None:
    """Build a demo database (demo.db, or --db): scripted patients that show the happy path
    and refusals with reasons, plus a simulated cohort; print their status and the
    bottleneck and referral-to-treatment summaries, and write the HTML report (demo.html).

    The default demo.db is rebuilt on every run; a database given with --db
    must be empty.
    """
    from pathway.service.demo import run_demos
    from pathway.service.simulate import simulate as run_cohort

    s = settings()
    url = s.database_url() if s.db_given else DEMO_DB
    s.database_url()  # refused with --server (before the demo file is removed)
    if not s.db_given:
        _remove_sqlite_file(url)
    clinic = s.clinic(url, create=True)
    if clinic.list():
        from pathway import InvalidInput

        raise InvalidInput("the demo needs an empty database; this one has enrollments (give another --db)")
    lines: list[str] = []
    say = lines.append if as_json else click.echo
    patients = run_demos(clinic, say)
    statuses = [clinic.status(p).to_dict() for p in patients]
    if cohort:
        show_bar = sys.stderr.isatty() and not as_json
        with click.progressbar(
            length=cohort, label=f"simulating {cohort} patients", file=sys.stderr, hidden=not show_bar
        ) as bar:
            run_cohort(clinic, cohort, seed=1, progress=bar.update)
    bottlenecks = clinic.report_bottlenecks().to_dict()
    rtt = clinic.report_rtt().to_dict()
    html_path = html_path or _beside(url, ".html", "demo.html")
    write_page(html_path, clinic.report_html())
    if as_json:
        emit_json(
            {
                "database": url,
                "narrative": lines,
                "patients": statuses,
                "bottlenecks": bottlenecks,
                "rtt": rtt,
                "html": html_path,
            }
        )
        return
    click.echo("")
    for st in statuses:
        click.echo(status_text(st))
        click.echo("")
    pct = "-" if rtt["within_pct"] is None else f"{rtt['within_pct']}%"
    click.echo(f"Bottlenecks: {bottlenecks['summary']}")
    click.echo(
        f"Referral to treatment: {rtt['incomplete']} waiting, {pct} within 18 weeks "
        f"(standard 92%); {len(rtt['at_risk'])} at or near breach."
    )
    click.echo(
        f"\ndemo database: {url}  (try: pathway --db {url} check DEMO-002, "
        f"pathway --db {url} worklist, pathway --db {url} report bottlenecks)"
    )
    click.echo(f"HTML report: {html_path}  (open it in a browser; it works offline)")


def _beside(url: str, suffix: str, otherwise: str) -> str:
    """A file next to a SQLite database file, with `suffix` for its extension; else `otherwise`."""
    path = url.removeprefix("sqlite:///").partition("?")[0]
    if not url.startswith("sqlite:///") or path in ("", ":memory:"):
        return otherwise
    return os.path.splitext(path)[0] + suffix


def _remove_sqlite_file(url: str) -> None:
    path = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


@cli.command()
@click.option("--patients", type=click.IntRange(1), required=True, help="How many patients.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same cohort.")
@click.option("--start", help="First possible referral date (default: two years before --until).")
@click.option("--until", help="Stop journeys at this date (default today); later steps stay open.")
@click.option("--pathway", help="The pathway (default: the one whose workflow file says default: true).")
@click.option(
    "--one-by-one",
    is_flag=True,
    help="Write each command to the database as it is made, as coordinators' commands are "
    "(same cohort, several times slower; for load and crash testing).",
)
@json_option
def simulate(
    patients: int,
    seed: int,
    start: str | None,
    until: str | None,
    pathway: str | None,
    one_by_one: bool,
    as_json: bool,
) -> None:
    """Create a synthetic cohort through the engine's own API (every guard honoured).

    Referrals arrive over the two years before --until; what happens to each
    patient is the journey the pathway's workflow file names (for the shipped
    spine pathways: stage waits, block results, refusals, holds, losses to
    follow-up, repeat ablations and 3/6/12-month follow-ups drawn from
    CohortParameters in pathway_workflows/cohort.py). Patient identifiers are
    SIM<seed>-<n>, so cohorts of different seeds can share a database.

    The commands are the ordinary enroll, record and advance; 500 patients at a
    time are run in memory and written together, each 500 one transaction.
    """
    from pathway.domain.timeutil import to_utc
    from pathway.service.simulate import simulate as run

    clinic = settings().clinic(create=True)
    first = to_utc(start, name="--start").date() if start else None
    last = to_utc(until, name="--until").date() if until else None
    show_bar = sys.stderr.isatty() and not as_json
    with click.progressbar(length=patients, label="simulating", file=sys.stderr, hidden=not show_bar) as bar:
        outcomes = run(
            clinic,
            patients,
            seed=seed,
            start=first,
            until=last,
            pathway=pathway,
            staged=not one_by_one,
            progress=bar.update,
        )
    if as_json:
        emit_json(dict(outcomes))
    else:
        click.echo(
            f"simulated {sum(outcomes.values())} patients: "
            + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        )
