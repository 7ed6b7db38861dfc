"""`pathway export fhir` and `pathway import fhir`: thin commands over `pathway.interop.fhir`.

`register(cli)` adds them (creating the `export` and `import` groups when missing).
"""

from __future__ import annotations

import click

from .main import PATHWAY_HELP, json_option, settings
from .output import emit_json, whole_file


def _group(cli: click.Group, name: str, help_text: str) -> click.Group:
    found = cli.commands.get(name)
    if isinstance(found, click.Group):
        return found
    group = click.Group(name, help=help_text)
    cli.add_command(group)
    return group


@click.command("fhir")
@click.argument("patient")
@click.option("--pathway", help=PATHWAY_HELP)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to FILE (default standard output, also -).",
)
def export_fhir(patient: str, pathway: str | None, output: str | None) -> None:
    """PATIENT's enrollment as a FHIR R4B Bundle (JSON): Patient, EpisodeOfCare, CarePlan,
    a Task per stage, Procedures for blocks and ablations, and NRS/NDI/PGIC Observations."""
    from pathway.interop import fhir

    text = fhir.export_json(settings().clinic(), patient, pathway=pathway)
    with whole_file(output) as out:
        out.write(text + "\n")


@click.command("fhir")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def import_fhir(file: str, as_json: bool) -> None:
    """Enroll the patient of a FHIR referral FILE: a ServiceRequest (or a Bundle with one
    ServiceRequest and its Patient). The pathway comes from instantiatesCanonical
    (https://pathway.invalid/fhir/PlanDefinition/ID, default cervical-neurotomy) and the
    referral time from authoredOn. Sending the same referral again changes nothing."""
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


def register(cli: click.Group) -> None:
    """Add `export fhir` and `import fhir` to `cli` (once)."""
    export = _group(cli, "export", "Export data.")
    if "fhir" not in export.commands:
        export.add_command(export_fhir)
    import_ = _group(cli, "import", "Import data.")
    if "fhir" not in import_.commands:
        import_.add_command(import_fhir)


# Importing this module (pathway_cli.main does) adds the commands; register() is idempotent.
from .main import cli as _cli  # noqa: E402

register(_cli)
