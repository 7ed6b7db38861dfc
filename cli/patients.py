"""The commands a coordinator runs on one patient: enroll, record, correct, advance, check,
status, history, and `list` of enrollments."""

from __future__ import annotations

import click

from .app import AT_HELP, PATHWAY_HELP, cli, json_option, settings
from .backend import Local
from .output import checks_text, day, emit_json, status_text, table


@cli.command()
@click.argument("patient")
@click.option(
    "--pathway",
    help="The pathway id, e.g. cervical-neurotomy (default: the one whose workflow file says default: true).",
)
@click.option("--profile", help="Payer profile (default: the pathway's default, e.g. medicare).")
@click.option("--name", help="Display name (the only personal data kept besides the identifier).")
@click.option("--at", help=AT_HELP)
@json_option
def enroll(
    patient: str, pathway: str | None, profile: str | None, name: str | None, at: str | None, as_json: bool
) -> None:
    """Enroll PATIENT (an identifier such as an MRN) in a pathway; the RTT clock starts.

    A new episode may not overlap another of the patient's in the same body region."""
    s = settings()
    backend = s.backend() if s.server else Local(s.clinic(create=True))
    status = backend.enroll(patient, pathway=pathway, profile=profile, name=name, at=at)
    if as_json:
        emit_json(status)
    else:
        click.echo(
            f"enrolled {status['patient']} in {status['pathway']} v{status['version']} "
            f"(profile {status['profile']}): {status['state']} since {day(status['since'])}"
        )


@cli.command()
@click.argument("patient")
@click.argument("kind")
@click.argument("values", nargs=-1, metavar="FIELD=VALUE...")
@click.option("--at", help=AT_HELP)
@click.option("--pathway", help=PATHWAY_HELP)
@json_option
def record(
    patient: str,
    kind: str,
    values: tuple[str, ...],
    at: str | None,
    pathway: str | None,
    as_json: bool,
) -> None:
    """Record an observation of KIND for PATIENT and print its id.

    Lists are comma-separated (levels=C4-5,C5-6), an empty value is an empty
    list (red_flags=), booleans are true/false/yes/no. `pathway workflows show
    ID` lists every kind and field. Example:

      pathway record MRN123 follow_up nrs=3 ndi=12 pgic=6 --at 2026-09-01
    """
    from pathway.domain.fields import parse_assignments

    obs = settings().backend().record(patient, kind, parse_assignments(values), at=at, pathway=pathway)
    if as_json:
        emit_json(obs)
    else:
        click.echo(f"recorded {obs['kind']} {obs['id']} for {patient} on {obs['day']}")


@cli.command()
@click.argument("patient")
@click.argument("observation_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--reason", required=True, help="Why the observation is wrong.")
@click.option("--at", help=AT_HELP)
@json_option
def correct(patient: str, observation_id: int, reason: str, at: str | None, as_json: bool) -> None:
    """Mark observation OBSERVATION_ID of PATIENT entered-in-error (it is kept, never edited).

    Record the right value afterwards as a new observation.
    """
    obs = settings().backend().correct(patient, observation_id, reason=reason, at=at)
    if as_json:
        emit_json(obs)
    else:
        click.echo(f"marked {obs['kind']} {obs['id']} of {patient} entered-in-error: {reason}")


@cli.command()
@click.argument("patient")
@click.option("--reason", required=True, help="What was entered in error (kept in the log).")
@click.option("--at", help=AT_HELP)
@click.option(
    "--pathway", help="The pathway of the closed episode (default: the patient's latest closed one)."
)
@json_option
def reopen(patient: str, reason: str, at: str | None, pathway: str | None, as_json: bool) -> None:
    """Reopen PATIENT's closed episode whose close was entered in error.

    The closing event stays in the log, marked voided by the reopen; the episode goes back
    to the state it was in (its stay there, and its clocks, go on as if it had never
    closed). Allowed within the workflow's reopen days of the close (30 for the spine
    pathways), for the roles its reopen section names, and only for the patient's latest
    episode in its region. Same as `pathway advance PATIENT reopen --reason TEXT`.
    """
    result = settings().backend().reopen(patient, reason=reason, at=at, pathway=pathway)
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"{patient}: {result['from']} -> {result['to']} "
            f"(reopened, {day(result['at'])}; the close is voided)"
        )


@cli.command()
@click.argument("patient")
@click.argument("trigger")
@click.option("--at", help=AT_HELP)
@click.option("--reason", help="Why (required by hold, mark_ineligible, refer_elsewhere).")
@click.option("--pathway", help=PATHWAY_HELP)
@json_option
def advance(
    patient: str,
    trigger: str,
    at: str | None,
    reason: str | None,
    pathway: str | None,
    as_json: bool,
) -> None:
    """Fire TRIGGER for PATIENT if its guards pass; otherwise say every unmet criterion (exit 3)."""
    result = settings().backend().advance(patient, trigger, at=at, reason=reason, pathway=pathway)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{patient}: {result['from']} -> {result['to']} ({trigger}, {day(result['at'])})")


@cli.command()
@click.argument("patient")
@click.argument("trigger", required=False)
@click.option(
    "--at",
    help="Judge as of this time (default now); an earlier time judges the state the patient was in then.",
)
@click.option("--reason", help="Judge as if this reason were given.")
@click.option("--pathway", help=PATHWAY_HELP)
@json_option
def check(
    patient: str,
    trigger: str | None,
    at: str | None,
    reason: str | None,
    pathway: str | None,
    as_json: bool,
) -> None:
    """Why can (or can't) PATIENT go on? Every possible trigger, or just TRIGGER, with every
    unmet criterion. Changes nothing."""
    s = settings()
    rows = s.backend().check(patient, trigger, at=at, pathway=pathway, role=s.role, reason=reason)
    if as_json:
        emit_json(rows)
    elif not rows:
        click.echo(f"{patient}: nothing can happen (the enrollment is closed)")
    else:
        click.echo("\n".join(checks_text(rows, indent="")))


@cli.command()
@click.argument("patient")
@click.option("--pathway", help=PATHWAY_HELP)
@click.option(
    "--at", help="As of this time (default now): the state then, replayed from the events up to it."
)
@json_option
def status(patient: str, pathway: str | None, at: str | None, as_json: bool) -> None:
    """Where PATIENT stands: state, days in it against its SLA, and what could happen next."""
    result = settings().backend().status(patient, pathway=pathway, at=at)
    if as_json:
        emit_json(result)
    else:
        click.echo(status_text(result))


@cli.command()
@click.argument("patient")
@click.option("--pathway", help=PATHWAY_HELP)
@click.option("--audit", is_flag=True, help="With --json: observations and corrections too.")
@click.option(
    "--at",
    help="The episode that stood at this time (an earlier one, after enrolling again), up to then.",
)
@json_option
def history(patient: str, pathway: str | None, audit: bool, at: str | None, as_json: bool) -> None:
    """PATIENT's history, oldest first: every event, and every observation recorded or marked
    entered-in-error, with who did it, when it took effect and when it was entered.

    --json prints the events; --json --audit prints the whole audit trail.
    """
    backend = settings().backend()
    if as_json and not audit:
        emit_json(backend.history(patient, pathway=pathway, at=at))
        return
    entries = backend.history(patient, pathway=pathway, at=at, audit=True)
    if as_json:
        emit_json(entries)
        return
    rows = []
    # In the order things happened (an observation back-dated sits where it took effect),
    # then the order they were entered.
    for e in sorted(entries, key=lambda e: (e["at"] or "", e["recorded_at"] or "")):
        if e["type"] == "event":
            what, change = e["trigger"], f"{e['from'] or ''} -> {e['to']}"
            if e.get("voids") is not None:
                what = f"{what} (voids {e['voids']})"
            if e.get("voided_by") is not None:
                change += f" (voided by {e['voided_by']})"
        elif e["type"] == "observation":
            what, change = f"record {e['kind']} {e['observation']}", ""
        else:
            what, change = f"correct {e['kind']} {e['observation']}", "entered-in-error"
        rows.append(
            [
                e.get("seq", ""),
                day(e["at"]),
                what,
                change,
                e["actor"],
                e["role"] or "",
                (e["recorded_at"] or "")[:16].replace("T", " "),
                e["reason"] or "",
            ]
        )
    click.echo(table(["seq", "at", "what", "change", "actor", "role", "entered", "reason"], rows))
    episodes = backend.episodes(patient)
    if len(episodes) > 1:
        shown = backend.status(patient, pathway=pathway, at=at)["enrollment_id"]
        click.echo("episodes of this patient (history --pathway ID --at DATE shows another):")
        for ep in reversed(episodes):
            opened = day(ep["opened_at"])
            span = f"{opened} to {day(ep['closed_at'])}" if ep["closed_at"] else f"since {opened}"
            here = "  <- shown" if shown == ep["enrollment_id"] else ""
            click.echo(f"  {ep['pathway']}  {span}  {ep['state']}{here}")


@cli.command("list")
@click.option("--pathway", help="Only this pathway.")
@click.option("--state", help="Only enrollments in this state.")
@click.option("--open", "open_only", is_flag=True, help="Only open enrollments.")
@json_option
def list_(pathway: str | None, state: str | None, open_only: bool, as_json: bool) -> None:
    """Enrollments, longest in their state first."""
    rows = settings().backend().enrollments(pathway=pathway, state=state, open_only=open_only)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no enrollments match")
        return
    click.echo(
        table(
            ["patient", "pathway", "state", "since", "days", "sla", "overdue"],
            [
                [
                    r["patient"],
                    f"{r['pathway']} v{r['version']}",
                    r["state"],
                    day(r["since"]),
                    r["days_in_state"] if r["open"] else "",
                    r["sla_days"] or "",
                    "OVERDUE" if r["overdue"] else "",
                ]
                for r in rows
            ],
        )
    )
