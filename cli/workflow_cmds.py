"""`pathway workflows`: inspect and check workflow definitions."""

from __future__ import annotations

import click

from .app import Exit, cli, json_option, settings
from .output import emit_json, table


@cli.group()
def workflows() -> None:
    """Inspect and check workflow definitions."""


@workflows.command("list")
@json_option
def workflows_list(as_json: bool) -> None:
    """Every loaded pathway and version."""
    rows = [
        {
            "id": w.id,
            "version": w.version,
            "title": w.title,
            "region": w.region,
            "states": len(w.states),
            "triggers": len(w.triggers),
            "source": w.source,
        }
        for w in settings().catalog().all()
    ]
    if as_json:
        emit_json(rows)
    else:
        click.echo(
            table(
                ["id", "version", "title", "region", "source"],
                [[r["id"], r["version"], r["title"], r["region"], r["source"]] for r in rows],
            )
        )


@workflows.command("show")
@click.argument("workflow_id")
@click.option("--version", "version", type=int, help="A version (default the latest).")
@json_option
def workflows_show(workflow_id: str, version: int | None, as_json: bool) -> None:
    """States, transitions, observation kinds and profiles of WORKFLOW_ID."""
    from pathway.definitions.describe import describe_workflow

    wf = settings().catalog().get(workflow_id, version)
    data = describe_workflow(wf)
    if as_json:
        emit_json(data)
        return
    click.echo(f"{wf.id} v{wf.version}: {wf.title}")
    click.echo(
        f"region {wf.region or '-'}; roles {', '.join(wf.roles)}; "
        f"profiles {', '.join(wf.profiles)} (default {wf.default_profile})\n"
    )
    click.echo(
        table(
            ["state", "sla_days", "kind", "description"],
            [[s["name"], s["sla_days"] or "", s["kind"], s["description"]] for s in data["states"]],
        )
    )
    click.echo("")
    click.echo(
        table(
            ["trigger", "from", "to", "roles", "guards"],
            [
                [
                    t["trigger"],
                    ", ".join(t["from"]),
                    t["to"],
                    ", ".join(t["roles"]),
                    ", ".join(t["guards"]) + (" (reason required)" if t["reason_required"] else ""),
                ]
                for t in data["transitions"]
            ],
        )
    )
    click.echo("")
    for k in data["observations"]:
        click.echo(f"{k['kind']} (recorded by {', '.join(k['roles'])}):")
        for f in k["fields"]:
            opt = "" if f["required"] else " (optional)"
            click.echo(f"    {f['name']}: {f['allowed']}{opt}")


@workflows.command("validate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@json_option
def workflows_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check workflow FILES (default: every loaded workflow); exit 1 listing every problem."""
    from pathway import DefinitionError
    from pathway.definitions.loader import load_file
    from pathway.domain.guards import installed_guards

    results = []
    if not files:
        for wf in settings().catalog().all():
            results.append({"file": wf.source, "ok": True, "problems": []})
    for f in files:
        try:
            wf = load_file(f, installed_guards())
            results.append({"file": f, "ok": True, "id": wf.id, "version": wf.version, "problems": []})
        except DefinitionError as exc:
            results.append({"file": f, "ok": False, "problems": list(exc.problems)})
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                click.echo(f"{r['file']}: ok")
            else:
                click.echo(f"{r['file']}: {len(r['problems'])} problem(s)")
                for p in r["problems"]:
                    click.echo(f"  {p}")
    if not all(r["ok"] for r in results):
        raise Exit(1)


@workflows.command("diagram")
@click.argument("workflow_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid stateDiagram-v2 or Graphviz DOT.",
)
@click.option("--version", "version", type=int, help="A version (default the latest).")
@json_option
def workflows_diagram(workflow_id: str, fmt: str, version: int | None, as_json: bool) -> None:
    """Print WORKFLOW_ID's state diagram as Mermaid or DOT text."""
    from pathway.definitions import diagram

    wf = settings().catalog().get(workflow_id, version)
    text = diagram.mermaid(wf) if fmt == "mermaid" else diagram.dot(wf)
    if as_json:
        emit_json({"id": wf.id, "version": wf.version, "format": fmt, "diagram": text})
    else:
        click.echo(text, nl=False)


@workflows.command("schema")
def workflows_schema() -> None:
    """Print the JSON Schema of the workflow file format (for editors)."""
    from pathway.definitions.schema import workflow_schema

    emit_json(workflow_schema())
