"""The `pathway` command group and what every command shares: settings, --json, and the one
place library errors become exit codes.

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

from .output import emit_json

if TYPE_CHECKING:
    from pathway import Clinic

DEFAULT_DB = "sqlite:///pathway.db"
#: The name this engine is installed under (PyPI's "pathway" is another project).
DISTRIBUTION = "pathway-clinic"


@dataclass
class Settings:
    db: str
    actor: str | None
    role: str
    workflows: tuple[str, ...]
    db_given: bool
    json: bool = False
    clinics: list[Clinic] = field(default_factory=list)
    server: str | None = None
    token: str | None = None
    #: --role or PATHWAY_ROLE was given (not the default): sent to the service as X-Pathway-Role.
    role_given: bool = False
    actor_given: bool = False
    remotes: list[Any] = field(default_factory=list)

    def database_url(self) -> str:
        """--db, for a command that works on the database directly (refused with --server)."""
        if self.server:
            from pathway import InvalidInput

            command = click.get_current_context().command_path
            raise InvalidInput(
                f"`{command}` works on the database directly (local and administrative use): "
                "run it without --server"
            )
        return self.db

    def backend(self) -> Any:
        """Where the patient commands run: the service at --server, else the database."""
        from .backend import Local, Remote

        if not self.server:
            return Local(self.clinic())
        if self.actor_given:
            from pathway import InvalidInput

            raise InvalidInput("--actor: with --server the actor is the token's user")
        remote = Remote(self.server, self.token, self.role if self.role_given else None)
        self.remotes.append(remote)
        return remote

    def clinic(self, db: str | None = None, *, create: bool = False) -> Clinic:
        """The clinic at --db. Only commands that bring patients in (`create`: enroll,
        import, simulate, demo, users add) may start a new SQLite file: for any other, a file that
        does not exist is a mistyped path, not an empty clinic."""
        from pathway import Clinic

        self.database_url()  # --server refuses a command on the database, whatever --db
        url = db or self.db
        if not create:
            _require_sqlite_file(url)
        clinic = Clinic.open(url, workflows=self.workflows, actor=self.actor, role=self.role)
        self.clinics.append(clinic)
        if self.role.strip():  # a mistyped --role is refused by every command (a blank one by those that act)
            clinic.known_role(self.role)
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
            "enroll, import, simulate or users add, or by `pathway db upgrade`"
        )


def _error_json(exc: Exception) -> dict[str, Any]:
    from pathway import GuardRefused, InvalidInput
    from pathway.domain.verdicts import reasons

    from .backend import RemoteError

    if isinstance(exc, RemoteError):
        return exc.to_json()

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


def quiet_broken_pipe() -> None:
    """The reader of standard output went away (`pathway export events | head`): stop
    quietly, as Unix tools do, without a message or a second error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class Exit(Exception):
    """A command has said what it has to say and ends with `code` (e.g. 1 when an import
    found problems, 3 when a migration refused some enrollments)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class PathwayGroup(click.Group):
    """Maps library errors to exit codes and one clear message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exit as done:
            ctx.exit(done.code)
        except Exception as exc:
            from pathway import PathwayError

            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if isinstance(exc, BrokenPipeError):
                quiet_broken_pipe()
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
                for remote in settings.remotes:
                    remote.close()


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
@click.option(
    "--server",
    envvar="PATHWAY_SERVER",
    help="Run the patient commands through the clinic service at this URL (env PATHWAY_SERVER).",
)
@click.option(
    "--token",
    envvar="PATHWAY_TOKEN",
    help="The bearer token for --server (env PATHWAY_TOKEN; pathway tokens create).",
)
@click.version_option(
    package_name=DISTRIBUTION,
    prog_name="pathway",
    message="%(prog)s (distribution %(package)s) %(version)s",
)
@click.pass_context
def cli(
    ctx: click.Context,
    db: str,
    actor: str | None,
    role: str,
    workflow_dirs: tuple[str, ...],
    server: str | None,
    token: str | None,
) -> None:
    """pathway: clinical pathway workflow engine.

    Enroll patients in a pathway, record what happened, and advance them
    through guarded steps. `pathway demo` builds a demo database to explore.

    Exit codes: 0 done, 1 error or invalid input, 2 usage, 3 refused by a
    guard or role, 4 not found, 5 changed concurrently (retry).

    Without --server every command works on the database at --db (local and
    administrative use). With --server URL --token TOKEN the patient commands
    (enroll, record, correct, advance, reopen, status, check, history, list,
    worklist) run through the clinic service, with the same output and exit
    codes, as the token's user.
    """
    source = ctx.get_parameter_source("db")
    given = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    ctx.obj = Settings(
        db=db,
        actor=actor,
        role=role,
        workflows=workflow_dirs,
        # On the command line only: PATHWAY_DB names a clinic's database, which the demo
        # must never write into.
        db_given=source == click.core.ParameterSource.COMMANDLINE,
        server=server or None,
        token=token,
        role_given=ctx.get_parameter_source("role") in given,
        actor_given=ctx.get_parameter_source("actor") == click.core.ParameterSource.COMMANDLINE,
    )


def settings() -> Settings:
    obj = click.get_current_context().obj
    assert isinstance(obj, Settings)
    return obj
