"""Administration: moving enrollments between workflow versions (`migrate`), the automatic
transitions (`sweep`) and the database schema (`db`)."""

from __future__ import annotations

import sys

import click

from .app import AT_HELP, Exit, cli, json_option, settings
from .output import emit_json


@cli.command()
@click.option("--pathway", required=True, help="The pathway whose enrollments move.")
@click.option("--to-version", "to_version", type=int, required=True, help="The version to move to.")
@click.option("--state", "states", multiple=True, help="Only enrollments in this state (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option("--at", help=AT_HELP)
@json_option
def migrate(
    pathway: str, to_version: int, states: tuple[str, ...], dry_run: bool, at: str | None, as_json: bool
) -> None:
    """Move open enrollments of a pathway to another version of its workflow file.

    Enrollments stay on the version they started on until migrated. One whose
    state does not exist in the target version is refused and left as it is
    (exit 3 when any is refused). Each move records a `migrate` event.
    """
    results = settings().clinic().migrate(pathway, to_version, states=states, dry_run=dry_run, at=at)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        verb = "would move" if dry_run else "moved"
        for r in results:
            if r.migrated:
                click.echo(f"{verb} {r.patient} ({r.state}) v{r.from_version} -> v{r.to_version}")
            else:
                click.echo(f"refused {r.patient} ({r.state}): {r.reason}")
        moved = sum(r.migrated for r in results)
        click.echo(f"{moved} {verb}, {len(results) - moved} refused")
    if any(not r.migrated for r in results):
        raise Exit(3)


@cli.command()
@click.option(
    "--at",
    "--as-of",
    "at",
    help="Judge, and date the changes, as of this date or time (default now; --as-of is the same).",
)
@click.option("--pathway", help="Only this pathway.")
@json_option
def sweep(at: str | None, pathway: str | None, as_json: bool) -> None:
    """Apply the automatic transitions whose guards pass (mark_lost after three unanswered
    contact attempts over 30 days). Safe to run repeatedly, e.g. nightly from cron.

    Changes are recorded under --actor (default "sweep") and --role, which must be
    a role the transitions allow (coordinator for mark_lost); if one that is due
    needs another role, nothing is applied (exit 3)."""
    done = settings().clinic().sweep(at=at, pathway=pathway, actor=settings().actor)
    if as_json:
        emit_json([t.to_dict() for t in done])
        return
    for t in done:
        click.echo(f"{t.patient}: {t.from_state} -> {t.to_state} ({t.trigger})")
    click.echo(f"sweep: {len(done)} change(s)")


# --- database ------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Create or migrate the database schema to the latest revision (Alembic)."""
    from pathway.store import database

    engine = database.create(settings().database_url())
    try:
        before, after = database.upgrade(engine)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"database": database.redact(str(engine.url)), "from": before, "to": after})
    elif before == after:
        click.echo(f"{database.redact(str(engine.url))}: schema already at revision {after}")
    else:
        click.echo(
            f"{database.redact(str(engine.url))}: schema upgraded from "
            f"{before or 'empty'} to revision {after}"
        )


# The FHIR commands live in their own module, which registers them into the groups above.


@db.command("set")
@click.argument("key", metavar="SETTING")
@click.argument("value")
@click.option("--force", is_flag=True, help="Change the time zone although it is set.")
@json_option
def db_set(key: str, value: str, force: bool, as_json: bool) -> None:
    """Store a clinic-wide setting in the database.

    \b
    timezone        the clinic's time zone, an IANA name (e.g. Australia/Sydney; default UTC):
                    every calendar-date rule, SLA day, RTT day and date given without a time
                    uses it. It is set once (--force to change it).
    patient-system  the identifier system (a URL) FHIR export gives patients who came
                    without one.
    """
    found = settings().clinic(create=True).set_setting(key, value, force=force)
    if as_json:
        emit_json(found)
    else:
        click.echo(f"{key} = {found[key]}")


@db.command("settings")
@json_option
def db_settings(as_json: bool) -> None:
    """The clinic-wide settings stored in the database."""
    from pathway.store.settings import KNOWN

    found = settings().clinic().settings()
    if as_json:
        emit_json(found)
        return
    for key, meaning in KNOWN.items():
        click.echo(f"{key:15s} {found.get(key, '(not set)')}    {meaning}")


@db.command("create-role")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the role's password from standard input.")
@json_option
def db_create_role(name: str, password_stdin: bool, as_json: bool) -> None:
    """PostgreSQL: create the least-privilege role NAME that services connect as (it can read
    and add, change only what pathway changes, never delete or truncate, owns nothing, so it
    cannot disable the audit trail's triggers). Run as the database's owner; an existing
    role is granted again."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    created = settings().clinic().create_role(name, password)
    if as_json:
        emit_json({"role": name, "created": created})
    else:
        click.echo(f"{'created' if created else 'granted again'} role {name}")


@cli.group()
def audit() -> None:
    """The audit trail: check it is as it was written."""


@audit.command("verify")
@click.argument("patient", required=False)
@json_option
def audit_verify(patient: str | None, as_json: bool) -> None:
    """Recompute every enrollment's hash chain (of PATIENT, or everyone's), replay its events
    against the state stored, and check that the database's protective triggers are there
    and refuse what they must. Each mismatch is printed; exit 1 when there is any."""
    report = settings().clinic().verify_audit(patient)
    if as_json:
        emit_json(report.to_dict())
    else:
        for finding in report.findings:
            click.echo(finding)
        verdict = "intact" if report.intact else f"{len(report.findings)} problem(s)"
        checked = f"{report.enrollments} enrollments, {report.entries} entries checked"
        click.echo(f"audit trail: {verdict} ({checked})")
    if not report.intact:
        raise Exit(1)
