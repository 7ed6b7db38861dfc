"""What every request of the service shares: the clinic (one per worker process), the
identity provider when configured, the metrics; and the `caller` dependency through which
a route learns who is calling.

The credentials are checked in the route's own worker thread (`Caller.identify`, the
first thing every route does), not in a thread of their own: that second thread hop
took about a third of the CPU of a simple authenticated request (`GET /v1/me`, 8
clients). A request whose parameters or body are invalid is still answered 401/403
first when its credentials are bad (`app.py` identifies the caller before it reports
the invalid input). The OpenAPI document names the bearer scheme on every operation
whose route asks for the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


@dataclass
class Caller:
    """The credentials a request carries; `identify()` checks them (once) and says who."""

    context: Context
    request: Request
    authorization: str | None
    role: str | None
    _identity: Identity | None = field(default=None, init=False)

    def identify(self) -> tuple[Context, Identity]:
        """The clinic's context and the caller's identity; raises `NotAuthenticated` or
        `PermissionDenied` (401/403) when the credentials are bad or the role is not theirs."""
        if self._identity is None:
            ctx = self.context
            clinic = ctx.clinic
            found = authenticate(clinic.identities, ctx.oidc, ctx.known_roles, self.authorization, self.role)
            self.request.state.identity = found
            self._identity = found
        return self.context, self._identity

    @property
    def identified(self) -> bool:
        return self._identity is not None


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of `pathway tokens create`, or (when the service is configured for "
    "one) a JWT of the clinic's identity provider.",
)


async def _caller(
    request: Request,
    # Declared so that the OpenAPI document names the security scheme on every operation
    # that needs it; the header itself is read below, as `authenticate` words its errors.
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    x_pathway_role: Annotated[
        str | None, Header(description="The role to act in, for a user with several.")
    ] = None,
) -> Caller:
    found = Caller(context(request), request, request.headers.get("authorization"), x_pathway_role)
    request.state.caller = found
    return found


caller = Annotated[Caller, Depends(_caller)]


def pending_caller(request: Request) -> Caller | None:
    """The caller of a request that needs one, when its route has not identified it yet."""
    found: Caller | None = getattr(request.state, "caller", None)
    return found if found is not None and not found.identified else None
