"""The `pathway` command: a thin layer over `pathway.Clinic`.

Each command parses its options, calls the library once and prints the result.
Library errors become exit codes in one place (`PathwayGroup.invoke`):
0 done, 1 error or invalid input, 2 usage, 3 refused by a guard or role,
4 not found, 5 concurrent change.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from .output import checks_text, day, emit_json, status_text, table, whole_file

if TYPE_CHECKING:
    from pathway import Clinic

DEFAULT_DB = "sqlite:///pathway.db"
DEMO_DB = "sqlite:///demo.db"


@dataclass
class Settings:
    db: str
    actor: str | None
    role: str
    workflows: tuple[str, ...]
    db_given: bool
    json: bool = False
    clinics: list[Clinic] = field(default_factory=list)

    def clinic(self, db: str | None = None, *, create: bool = False) -> Clinic:
        """The clinic at --db. Only commands that bring patients in (`create`: enroll,
        import, simulate, demo) may start a new SQLite file: for any other, a file that
        does not exist is a mistyped path, not an empty clinic."""
        from pathway import Clinic

        url = db or self.db
        if not create:
            _require_sqlite_file(url)
        clinic = Clinic.open(url, workflows=self.workflows, actor=self.actor, role=self.role)
        self.clinics.append(clinic)
        return clinic

    def catalog(self) -> Any:
        from pathway import Catalog

        return Catalog.discover(self.workflows)


def _require_sqlite_file(url: str) -> None:
    from pathway import NotFound
    from pathway.store.database import missing_sqlite_file

    path = missing_sqlite_file(url)
    if path is not None:
        raise NotFound(
            f"no database at {path}: check --db (or PATHWAY_DB); a new one is made by the first "
            "enroll, import or simulate, or by `pathway db upgrade`"
        )


def _error_json(exc: Exception) -> dict[str, Any]:
    from pathway import GuardRefused, InvalidInput
    from pathway.domain.verdicts import reasons

    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, GuardRefused):
        body = {
            "refused": True,
            "trigger": exc.trigger,
            "reasons": reasons(list(exc.verdicts)),
            "message": str(exc),
        }
    elif isinstance(exc, InvalidInput):
        body["problems"] = list(exc.problems)
    return body


def _quiet_broken_pipe() -> None:
    """The reader of standard output went away (`pathway export events | head`): stop
    quietly, as Unix tools do, without a message or a second error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class PathwayGroup(click.Group):
    """Maps library errors to exit codes and one clear message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            from pathway import PathwayError

            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if isinstance(exc, BrokenPipeError):
                _quiet_broken_pipe()
                ctx.exit(1)
            if isinstance(exc, PathwayError):
                code = exc.exit_code
                message = str(exc)
            elif isinstance(exc, OSError) and exc.filename is not None:
                # A file a command was told to read or write: name it and the reason.
                code = 1
                message = f"{exc.filename}: {exc.strerror or type(exc).__name__}"
            else:
                if os.environ.get("PATHWAY_DEBUG"):
                    raise
                code = 1
                # Never echo SQL parameters (observation values) or a password.
                detail = str(getattr(exc, "orig", None) or type(exc).__name__)
                message = f"internal error ({type(exc).__name__}): {detail}"
            if settings is not None and settings.json:
                emit_json(_error_json(exc))
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)
        finally:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if settings is not None:
                for clinic in settings.clinics:
                    clinic.close()


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` on a printing command; remembered so errors print JSON too."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if isinstance(ctx.obj, Settings):
            ctx.obj.json = value
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=remember,
        expose_value=True,
        is_eager=True,
        help="Print JSON instead of text.",
    )(fn)


AT_HELP = "When it happened: ISO date or date-time (default now; a date is midnight UTC)."
PATHWAY_HELP = "The pathway, when the patient has more than one open enrollment."


@click.group(cls=PathwayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="PATHWAY_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database URL: sqlite:///FILE or postgresql://HOST/DB (env PATHWAY_DB).",
)
@click.option(
    "--actor",
    envvar="PATHWAY_ACTOR",
    help="Who is acting (env PATHWAY_ACTOR; default the OS user).",
)
@click.option(
    "--role",
    envvar="PATHWAY_ROLE",
    default="coordinator",
    show_default=True,
    help="The acting role, e.g. coordinator or physician (env PATHWAY_ROLE).",
)
@click.option(
    "--workflows",
    "workflow_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Extra directory of workflow YAML files (repeatable; env PATHWAY_WORKFLOWS).",
)
@click.version_option(package_name="pathway")
@click.pass_context
def cli(ctx: click.Context, db: str, actor: str | None, role: str, workflow_dirs: tuple[str, ...]) -> None:
    """pathway: clinical pathway workflow engine.

    Enroll patients in a pathway, record what happened, and advance them
    through guarded steps. `pathway demo` builds a demo database to explore.

    Exit codes: 0 done, 1 error or invalid input, 2 usage, 3 refused by a
    guard or role, 4 not found, 5 changed concurrently (retry).
    """
    source = ctx.get_parameter_source("db")
    ctx.obj = Settings(
        db=db,
        actor=actor,
        role=role,
        workflows=workflow_dirs,
        # On the command line only: PATHWAY_DB names a clinic's database, which the demo
        # must never write into.
        db_given=source == click.core.ParameterSource.COMMANDLINE,
    )


def settings() -> Settings:
    obj = click.get_current_context().obj
    assert isinstance(obj, Settings)
    return obj


# --- patients ------------------------------------------------------------------------------


@cli.command()
@click.argument("patient")
@click.option("--pathway", required=True, help="The pathway id, e.g. cervical-neurotomy.")
@click.option("--profile", help="Payer profile (default: the pathway's default, e.g. medicare).")
@click.option("--name", help="Display name (the only personal data kept besides the identifier).")
@click.option("--at", help=AT_HELP)
@json_option
def enroll(
    patient: str, pathway: str, profile: str | None, name: str | None, at: str | None, as_json: bool
) -> None:
    """Enroll PATIENT (an identifier such as an MRN) in a pathway; the RTT clock starts."""
    status = settings().clinic(create=True).enroll(patient, pathway, profile=profile, name=name, at=at)
    if as_json:
        emit_json(status.to_dict())
    else:
        click.echo(
            f"enrolled {status.patient} in {status.pathway} v{status.version} "
            f"(profile {status.profile}): {status.state} since {day(status.to_dict()['since'])}"
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
    from pathway.service.results import observation_dict

    obs = settings().clinic().record(patient, kind, parse_assignments(values), at=at, pathway=pathway)
    if as_json:
        emit_json(observation_dict(obs))
    else:
        click.echo(f"recorded {obs.kind} {obs.id} for {patient} on {obs.day.isoformat()}")


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
    from pathway.service.results import observation_dict

    obs = settings().clinic().correct(patient, observation_id, reason=reason, at=at)
    if as_json:
        emit_json(observation_dict(obs))
    else:
        click.echo(f"marked {obs.kind} {obs.id} of {patient} entered-in-error: {reason}")


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
    result = settings().clinic().advance(patient, trigger, at=at, reason=reason, pathway=pathway)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(
            f"{patient}: {result.from_state} -> {result.to_state} ({trigger}, {day(result.to_dict()['at'])})"
        )


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
    from pathway.service.results import check_dict

    s = settings()
    checks = s.clinic().check(patient, trigger, at=at, pathway=pathway, role=s.role, reason=reason)
    rows = [check_dict(c) for c in checks]
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
    result = settings().clinic().status(patient, pathway=pathway, at=at).to_dict()
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
    from pathway.domain.timeutil import to_utc
    from pathway.service.results import audit_entries, event_dict

    clinic = settings().clinic()
    events = clinic.history(patient, pathway=pathway, at=at)
    if as_json and not audit:
        emit_json([event_dict(e) for e in events])
        return
    observations = clinic.observations(patient, pathway=pathway, at=at)
    if at is not None:
        until = to_utc(at)
        observations = [o for o in observations if o.effective_at <= until]
    entries = audit_entries(events, observations)
    if as_json:
        emit_json(entries)
        return
    rows = []
    for e in entries:
        if e["type"] == "event":
            what, change = e["trigger"], f"{e['from'] or ''} -> {e['to']}"
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


@cli.command("list")
@click.option("--pathway", help="Only this pathway.")
@click.option("--state", help="Only enrollments in this state.")
@click.option("--open", "open_only", is_flag=True, help="Only open enrollments.")
@json_option
def list_(pathway: str | None, state: str | None, open_only: bool, as_json: bool) -> None:
    """Enrollments, longest in their state first."""
    rows = [r.to_dict() for r in settings().clinic().list(pathway=pathway, state=state, open_only=open_only)]
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
    from pathway.service import demo as demo_script
    from pathway.service.simulate import simulate as run_cohort

    s = settings()
    url = s.db if s.db_given else DEMO_DB
    if not s.db_given:
        _remove_sqlite_file(url)
    clinic = s.clinic(url, create=True)
    if clinic.list():
        from pathway import InvalidInput

        raise InvalidInput("the demo needs an empty database; this one has enrollments (give another --db)")
    lines: list[str] = []
    say = lines.append if as_json else click.echo
    patients = demo_script.run(clinic, say)
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
    _write_page(html_path, clinic.report_html())
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
        sys.exit(3)


# --- workflows -----------------------------------------------------------------------------


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
        sys.exit(1)


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


@cli.command()
@click.option("--as-of", "as_of", help="As of this date (default now): the patients as they stood then.")
@click.option("--role", "only_role", help="Only steps this role may take (default: everything).")
@click.option("--limit", type=click.IntRange(1), help="At most this many lines.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@json_option
def worklist(
    as_of: str | None, only_role: str | None, limit: int | None, as_csv: bool, as_json: bool
) -> None:
    """What needs action today, most urgent first: RTT breaches, stays over SLA (holds
    included), RTT at risk, follow-ups due, steps now ready, steps blocked (and why)."""
    import csv as csv_module

    items = [i.to_dict() for i in settings().clinic().worklist(as_of=as_of, role=only_role)]
    items = items[:limit] if limit else items
    if as_json:
        emit_json(items)
        return
    if as_csv:
        fields = ["patient", "pathway", "state", "kind", "action", "trigger", "urgency"]
        writer = csv_module.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(items)
        return
    if not items:
        click.echo("nothing needs action")
        return
    click.echo(
        table(
            ["patient", "state", "what", "next action"],
            [[i["patient"], i["state"], i["kind"], i["action"]] for i in items],
        )
    )


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


@cli.command()
@click.option("--patients", type=click.IntRange(1), required=True, help="How many patients.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same cohort.")
@click.option("--start", help="First possible referral date (default: two years before --until).")
@click.option("--until", help="Stop journeys at this date (default today); later steps stay open.")
@click.option("--pathway", default="cervical-neurotomy", show_default=True, help="The pathway.")
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
    pathway: str,
    one_by_one: bool,
    as_json: bool,
) -> None:
    """Create a synthetic cohort through the engine's own API (every guard honoured).

    Referrals arrive over the two years before --until; stage waits, block results, refusals, holds,
    losses to follow-up, repeat ablations and 3/6/12-month follow-ups are drawn
    from the distributions in pathway/simulate.py (CohortParameters). Patient
    identifiers are SIM<seed>-<n>, so cohorts of different seeds can share a database.

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
    import csv as csv_module

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
        writer = csv_module.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(lines)
        return
    click.echo(
        table(
            [
                "state",
                "sla",
                "in",
                "out",
                "now",
                "median",
                "p90",
                "max",
                "open med",
                "open p90",
                "over sla",
                "over now",
                "patient-days",
            ],
            [
                [f"{line['state']} (planned)" if line["planned"] else line["state"]]
                + [line[c] if line[c] is not None else "" for c in columns[1:-1]]
                for line in lines
            ],
        )
    )
    click.echo("")
    click.echo(data["summary"])
    if any(line["planned"] for line in lines):
        click.echo("(planned) states are planned care, such as recovery and follow-up: listed, not waiting.")


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
    import csv as csv_module

    data = settings().clinic().report_rtt(pathway=pathway, as_of=as_of).to_dict()
    if as_json:
        emit_json(data)
        return
    if as_csv:
        writer = csv_module.DictWriter(
            sys.stdout, fieldnames=["month", "pathways", "median_weeks", "p92_weeks", "within_pct"]
        )
        writer.writeheader()
        writer.writerows(data["completed_by_month"])
        return
    if data["within_pct"] is None:
        click.echo("Incomplete pathways: 0 (nobody is waiting, so the 92% standard does not apply)")
    else:
        verdict = "meets" if data["meets_target"] else "misses"
        click.echo(
            f"Incomplete pathways: {data['incomplete']}; within 18 weeks: "
            f"{data['within_standard']} ({data['within_pct']}%, {verdict} the 92% standard)"
        )
    if data["at_risk"]:
        click.echo("At or near breach (16+ weeks):")
        click.echo(
            table(
                ["patient", "pathway", "weeks", "breached"],
                [
                    [r["patient"], r["pathway"], r["weeks"], "yes" if r["breached"] else ""]
                    for r in data["at_risk"]
                ],
            )
        )
    if data["completed_by_month"]:
        click.echo("Completed pathways by month of referral:")
        click.echo(
            table(
                ["month", "pathways", "median weeks", "p92 weeks", "within 18 w"],
                [
                    [m["month"], m["pathways"], m["median_weeks"], m["p92_weeks"], f"{m['within_pct']}%"]
                    for m in data["completed_by_month"]
                ],
            )
        )


@report.command("funnel")
@click.option("--pathway", help="Only this pathway.")
@click.option("--as-of", "as_of", help="As of this date (default now).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the stages as CSV.")
@json_option
def report_funnel(pathway: str | None, as_of: str | None, as_csv: bool, as_json: bool) -> None:
    """How many reached each stage, conversion between stages, and exits by terminal state
    and reason."""
    import csv as csv_module

    data = settings().clinic().report_funnel(pathway=pathway, as_of=as_of)
    if as_json:
        emit_json(data)
        return
    if as_csv:
        writer = csv_module.DictWriter(sys.stdout, fieldnames=["stage", "reached", "conversion_pct"])
        writer.writeheader()
        writer.writerows(data["stages"])
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
    import csv as csv_module

    data = settings().clinic().report_outcomes(pathway=pathway, as_of=as_of)
    if as_json:
        emit_json(data)
        return
    if as_csv:
        writer = csv_module.DictWriter(sys.stdout, fieldnames=list(data))
        writer.writeheader()
        writer.writerow(data)
        return
    for key, value in data.items():
        click.echo(f"{key.replace('_', ' '):28s} {'-' if value is None else value}")


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
    _write_page(output, page)
    if output == "-":
        return
    if as_json:
        emit_json({"wrote": output, "bytes": len(page.encode())})
    else:
        click.echo(f"wrote {output}")


def _write_page(path: str, page: str) -> None:
    """Write `page` to `path` whole or not at all ("-": standard output)."""
    with whole_file(path) as handle:
        handle.write(page)


# --- import and export ---------------------------------------------------------------------


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
    help="Replace patient identifiers with keyed hashes (PATHWAY_PSEUDONYM_KEY) and "
    "leave out free-text reasons.",
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
@click.option("--pathway", help="Pathway for rows without a pathway column.")
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
        sys.exit(1)


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
        sys.exit(1)


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
from . import fhir_cmds as _fhir_cmds  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="pathway")
    except BrokenPipeError:  # raised while flushing standard output at exit
        _quiet_broken_pipe()
        sys.exit(1)


if __name__ == "__main__":
    main()
