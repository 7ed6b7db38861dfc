"""`pathway workflows`: inspect and check workflow definitions."""

from __future__ import annotations

from typing import Any

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
            [[s["name"], s["sla_days"] or "", _state_kind(s), s["description"]] for s in data["states"]],
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
    click.echo(
        "\nWhat reports, the worklist and exports read (default pathway: "
        + ("yes" if data["default"] else "no")
        + "):"
    )
    for line in _declarations_text(data):
        click.echo(f"  {line}")


def _state_kind(state: dict[str, Any]) -> str:
    flags = [flag for flag in ("planned", "optional", "completed") if state[flag]]
    return ", ".join([state["kind"], *flags])


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _declarations_text(data: dict[str, Any]) -> list[str]:
    """The workflow file's rtt, outcome, follow_up, worklist, fhir and simulation sections, in words."""
    lines = []
    rtt = data["rtt"]
    if rtt is None:
        lines.append("referral to treatment: not reported (no rtt section)")
    else:
        stops = [f"the first {t}" for t in rtt["stop_triggers"]]
        if rtt["stop_states"]:
            stops.append("entering " + _either(rtt["stop_states"]))
        lines.append(
            f"referral to treatment: from entering {rtt['start']} to {_either(stops)}; standard "
            f"{rtt['standard_weeks']} weeks, target {rtt['target_pct']:g}%, "
            f"at risk from {rtt['at_risk_weeks']} weeks"
        )
    out = data["outcome"]
    if out is None:
        lines.append("outcome: not reported (no outcome section)")
    else:
        measure, base = out["measure"], out["baseline"]
        low, high = out["window_days"]
        text = (
            f"outcome ({out['label']}): {measure['kind']}.{measure['field']} against the latest "
            f"{base['kind']}.{base['field']}, a success at >= {out['success_relief_pct']:g}% relief, "
            f"judged on days {low}-{high} after {out['treatment']} (closest to day {out['target_day']})"
        )
        if out["secondary"]:
            second = out["secondary"]
            text += f"; also {second['label']} (meaningful change {second['meaningful_change']:g})"
        if out["repeat"]:
            text += f"; repeats: {out['repeat']}"
        lines.append(text)
    follow = data["follow_up"]
    if follow is None:
        lines.append("follow-up schedule: none")
    else:
        months = ", ".join(str(m) for m in follow["months"])
        lines.append(
            f"follow-up: {months} months after {follow['after']}, by a {follow['kind']} observation (due "
            f"{follow['due_days_before']} days before to {follow['due_days_after']} after), while in "
            f"{_either(follow['in_states']) if follow['in_states'] else 'no state'}"
        )
    routine = data["worklist"]["routine"]
    lines.append(
        f"worklist: waiting in {', '.join(routine)} is routine" if routine else "worklist: no routine states"
    )
    fhir = data["fhir"]
    scores = "; ".join(f"{kind} ({', '.join(fields)})" for kind, fields in fhir["scores"].items()) or "none"
    procedures = "; ".join(
        f"{kind} ({spec['code']['code'] if spec['code'] else 'no code'}"
        + (f", add-on {spec['add_on']['code']}" if spec["add_on"] else "")
        + ")"
        for kind, spec in fhir["procedures"].items()
    )
    lines.append(f"FHIR: scores {scores}; procedures {procedures or 'none'}")
    journey = data["simulation"]
    lines.append(f"simulation: journey {journey['journey']}" if journey else "simulation: none")
    return lines


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
