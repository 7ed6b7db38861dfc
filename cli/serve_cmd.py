"""`pathway serve`: the clinic service (HTTP API) over the database at --db."""

from __future__ import annotations

import click

from .app import cli, settings


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (PostgreSQL; SQLite takes one). On Linux each listens on a "
    "socket of its own, so connections spread over them.",
)
@click.option(
    "--pin-cpus",
    is_flag=True,
    help="Keep each worker process to one CPU core (Linux): 10-25% less CPU a request on a "
    "machine the service has to itself; not where other services share the cores.",
)
@click.option("--oidc-issuer", help="Accept JWTs from this identity provider (its `iss`).")
@click.option("--oidc-audience", help="The `aud` those JWTs must name.")
@click.option("--oidc-jwks", type=click.Path(dir_okay=False), help="The provider's keys (a JWKS file).")
@click.option("--oidc-roles-claim", default="roles", show_default=True, help="The claim listing roles.")
@click.option(
    "--oidc-user-claim", default="preferred_username", show_default=True, help="The claim naming the user."
)
def serve(
    host: str,
    port: int,
    workers: int,
    pin_cpus: bool,
    oidc_issuer: str | None,
    oidc_audience: str | None,
    oidc_jwks: str | None,
    oidc_roles_claim: str,
    oidc_user_claim: str,
) -> None:
    """Run the clinic service: the workspace for coordinators at / (sign in with a password:
    pathway users add NAME --role R --password), the HTTP API under /v1 (OpenAPI at
    /openapi.json, docs at /docs), the FHIR face under /fhir, /healthz, /readyz and
    /metrics, until SIGTERM or Ctrl-C.

    Callers authenticate with `Authorization: Bearer TOKEN` (pathway users add,
    pathway tokens create) or, with --oidc-*, a JWT of the clinic's identity provider.
    The database must exist and be current (pathway db upgrade). Logs are JSON lines
    on standard error, without personal data.
    """
    from pathway.api.server import serve as run

    s = settings()
    s.clinic()  # a mistyped --db is one clear line (no database at ...), not a new empty file
    run(
        db=s.db,
        host=host,
        port=port,
        workers=workers,
        workflows=s.workflows,
        pin_cpus=pin_cpus,
        oidc={
            "oidc_issuer": oidc_issuer,
            "oidc_audience": oidc_audience,
            "oidc_jwks": oidc_jwks,
            "oidc_roles_claim": oidc_roles_claim,
            "oidc_user_claim": oidc_user_claim,
        },
    )
