"""Administration: moving enrollments between workflow versions (`migrate`), the automatic
transitions (`sweep`) and the database schema (`db`)."""

from __future__ import annotations

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

    engine = database.create(settings().db)
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
