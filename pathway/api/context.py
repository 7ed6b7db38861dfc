"""What every request of the service shares: the clinic (one per worker process), the
identity provider when configured, the metrics; and the `caller` dependency that
authenticates a request before its route runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request

from pathway.api.auth import Oidc, authenticate
from pathway.api.metrics import Metrics
from pathway.clinic import Clinic
from pathway.service.identity import Identity


@dataclass
class Context:
    clinic: Clinic
    oidc: Oidc | None = None
    metrics: Metrics = field(default_factory=Metrics)
    known_roles: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.known_roles = {r for w in self.clinic.catalog.all() for r in w.roles}


def context(request: Request) -> Context:
    found: Context = request.app.state.context
    return found


def _caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer TOKEN")] = None,
    x_pathway_role: Annotated[
        str | None, Header(description="The role to act in, for a user with several.")
    ] = None,
) -> tuple[Context, Identity]:
    ctx = context(request)
    ident = authenticate(ctx.clinic.identities, ctx.oidc, ctx.known_roles, authorization, x_pathway_role)
    request.state.identity = ident
    return ctx, ident


caller = Annotated[tuple[Context, Identity], Depends(_caller)]
