"""Bringing data in and sending it out: `import`, `export` (events, FHIR) and the `outbox`."""

from __future__ import annotations

import sys
from typing import Any

import click

from .app import PATHWAY_HELP, Exit, cli, json_option, settings
from .output import emit_json, table, whole_file


@cli.group("import")
def import_() -> None:
    """Bring referrals in from files."""


@cli.group()
def export() -> None:
    """Write enrollments and events out in standard formats."""


@export.command("events")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "xes"]),
    default="csv",
    show_default=True,
    help="CSV, JSON lines, or XES for process-mining tools.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to FILE (default standard output, also -).",
)
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace patient identifiers, actors and enrollment numbers with keyed hashes "
    "(PATHWAY_PSEUDONYM_KEY) and leave out free-text reasons.",
)
@click.option("--pathway", help="Only this pathway.")
def export_events(fmt: str, output: str | None, pseudonymize: bool, pathway: str | None) -> None:
    """Stream the whole event log (memory does not grow with it)."""
    from pathway.interop.event_export import pseudonym_key

    pseudonym_key(pseudonymize)  # refuse before creating the output file
    clinic = settings().clinic()
    with whole_file(output, newline="") as handle:
        count = clinic.export_events(handle, fmt, pseudonymize=pseudonymize, pathway=pathway)
    if output not in (None, "-"):
        click.echo(f"wrote {count} events to {output}", err=True)


@import_.command("referrals")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--pathway",
    help="Pathway for rows without a pathway column (default: the default pathway).",
)
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if others are bad.")
@json_option
def import_referrals(file: str, pathway: str | None, skip_invalid: bool, as_json: bool) -> None:
    """Enroll every referral in a CSV FILE with columns patient, referred_at and optionally
    pathway, profile, name (a header row names them).

    Every row is checked first; a bad row is reported by line number and field,
    and without --skip-invalid nothing is imported (exit 1). Running the same
    file again enrolls nobody twice.
    """
    clinic = settings().clinic(create=True)
    show_bar = sys.stderr.isatty() and not as_json
    with click.progressbar(
        length=_count_rows(file), label="importing", file=sys.stderr, hidden=not show_bar
    ) as bar:
        report = clinic.import_referrals(
            file, pathway=pathway, skip_invalid=skip_invalid, progress=bar.update
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        for problem in report.problems[:50]:
            click.echo(problem, err=True)
        if len(report.problems) > 50:
            click.echo(f"... and {len(report.problems) - 50} more problems", err=True)
        if report.problems and not skip_invalid:
            click.echo(
                f"nothing imported: {len(report.problems)} problem(s) in {report.rows} rows "
                "(fix them, or use --skip-invalid)",
                err=True,
            )
        else:
            click.echo(
                f"imported {report.imported}, already enrolled {report.already_enrolled}, "
                f"invalid {len(report.problems)} (of {report.rows} rows)"
            )
    if report.problems and not skip_invalid:
        raise Exit(1)


def _count_rows(file: str) -> int:
    try:
        with open(file, "rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    except OSError:
        return 0


# --- outbox --------------------------------------------------------------------------------


@cli.group()
def outbox() -> None:
    """Integration messages: one per committed change, delivered at least once."""


@outbox.command("schema")
def outbox_schema() -> None:
    """Print the JSON Schema (2020-12) of the outbox envelope: every message type, its
    fields and which are required (also served at GET /v1/schemas/outbox)."""
    from pathway.domain.envelope_schema import schema

    emit_json(schema())


@outbox.command("list")
@click.option("--pending", is_flag=True, help="Only messages not yet delivered.")
@click.option("--limit", type=click.IntRange(1), help="At most this many (oldest first).")
@json_option
def outbox_list(pending: bool, limit: int | None, as_json: bool) -> None:
    """Outbox messages, oldest first, with their delivery state."""
    rows = settings().clinic().outbox(pending_only=pending, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no messages")
        return
    click.echo(
        table(
            ["id", "type", "patient", "change", "delivered", "attempts", "last error"],
            [
                [
                    r["message"]["id"][:8],
                    r["message"]["type"],
                    r["message"]["patient"],
                    r["message"].get("trigger") or (r["message"].get("observation") or {}).get("kind", ""),
                    (r["delivered_at"] or "")[:16].replace("T", " "),
                    r["attempts"],
                    r["last_error"] or "",
                ]
                for r in rows
            ],
        )
    )


@outbox.command("deliver")
@click.option("--url", required=True, help="Endpoint that receives each message as a JSON POST.")
@click.option("--follow", is_flag=True, help="Keep running, delivering new messages as they come.")
@click.option(
    "--interval",
    type=click.FloatRange(0.05),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option(
    "--batch", type=click.IntRange(1), default=500, show_default=True, help="Messages read per pass."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="First back-off after a failure; doubles per attempt, at most 5 minutes.",
)
@json_option
def outbox_deliver(
    url: str, follow: bool, interval: float, batch: int, timeout: float, retry_delay: float, as_json: bool
) -> None:
    """POST pending messages to URL, in order per enrollment, marking each delivered only on
    a 2xx answer. Safe from cron (exit 1 when a message failed and will be retried) or as a
    long-running process with --follow (stops cleanly on SIGTERM or Ctrl-C)."""
    import signal
    import threading

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("expected an http:// or https:// URL", param_hint="--url")
    stop = threading.Event()
    if follow:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    def progress(report: Any) -> None:
        if follow and not as_json:
            click.echo(f"delivered {report.delivered}, failed {report.failed}", err=True)

    report = (
        settings()
        .clinic()
        .deliver_outbox(
            url,
            follow=follow,
            interval=interval,
            stop=stop,
            on_pass=progress,
            batch=batch,
            timeout=timeout,
            base_delay=retry_delay,
        )
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"delivered {report.delivered}, failed {report.failed}, held back {report.held_back}")
        for error in report.errors[:20]:
            click.echo(f"  {error}")
    if report.failed and not follow:
        raise Exit(1)


@export.command("fhir")
@click.argument("patient")
@click.option("--pathway", help=PATHWAY_HELP)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to FILE (default standard output, also -).",
)
@click.option(
    "--type",
    "bundle_type",
    type=click.Choice(["collection", "transaction"]),
    default="collection",
    show_default=True,
    help="transaction: conditional creates to POST to a FHIR server (each resource created "
    "unless the server has one with its identifier; sending it again creates nothing).",
)
def export_fhir(patient: str, pathway: str | None, output: str | None, bundle_type: str) -> None:
    """PATIENT's enrollment as a FHIR R4B Bundle (JSON): Patient, EpisodeOfCare (with the
    referral it came from), CarePlan, a Task per stage, Procedures for blocks and ablations
    (a refused attempt's is not-done), and the score Observations the workflow names.

    The patient's identifier keeps the system it was imported with; for others, set the
    clinic's with `pathway db set patient-system URL`."""
    from pathway.interop import fhir

    text = fhir.export_json(settings().clinic(), patient, pathway=pathway, type=bundle_type)
    with whole_file(output) as out:
        out.write(text + "\n")


@import_.command("fhir")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def import_fhir(file: str, as_json: bool) -> None:
    """Enroll the patient of a FHIR referral FILE: a ServiceRequest (or a Bundle with one
    ServiceRequest and its Patient). The pathway comes from instantiatesCanonical
    (https://pathway.invalid/fhir/PlanDefinition/ID, default: the default pathway) and the
    referral time from authoredOn (default now).

    The patient's identifier is the one with the clinic's patient-system (pathway db set
    patient-system URL), or the only one; its system is kept. Sending the same referral
    again changes nothing: the same ServiceRequest identifier (or, without one, the same
    content). A different identifier is a different referral."""
    from pathway.interop import fhir

    data = fhir.read_file(file)
    status, enrolled = fhir.enroll_referral(settings().clinic(create=True), data)
    if as_json:
        emit_json({**status.to_dict(), "enrolled": enrolled})
    elif enrolled:
        click.echo(f"enrolled {status.patient} in {status.pathway} v{status.version}: {status.state}")
    else:
        click.echo(
            f"{status.patient} is already enrolled in {status.pathway} from this referral "
            f"(opened {status.opened_at.date().isoformat()}): nothing changed"
        )
