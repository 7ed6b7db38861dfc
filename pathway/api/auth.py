"""Who is calling: a bearer token of a user in the database, or (when configured) a JWT
from the clinic's identity provider (OIDC), checked against the provider's JWKS file.

`X-Pathway-Role` picks the role of a user with several (`identity.choose_role`). The
identity is the only source of the actor and role of a change made through the service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from pathway.errors import InvalidInput, NotAuthenticated
from pathway.service.identity import Identities, Identity, choose_role

ROLE_HEADER = "x-pathway-role"
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


@dataclass(frozen=True)
class Oidc:
    """An identity provider whose JWTs the service accepts: `issuer` (the `iss`), `audience`
    (the `aud` it must name), the provider's keys (a JWKS file), the claim that lists roles
    and the one that names the user."""

    issuer: str
    audience: str
    jwks: Path
    roles_claim: str = "roles"
    user_claim: str = "preferred_username"
    keys: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, issuer: str, audience: str, jwks: str | Path, **claims: str) -> Oidc:
        path = Path(jwks)
        try:
            document = json.loads(path.read_text())
            keyset = jwt.PyJWKSet.from_dict(document)
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            raise InvalidInput(f"--oidc-jwks: cannot read a JWKS from {path}: {exc}") from None
        keys = {k.key_id or "": k for k in keyset.keys}
        return cls(issuer, audience, path, keys=keys, **claims)

    def identity(self, token: str, asked_role: str | None, known: set[str]) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.get(header.get("kid") or "") or (
                next(iter(self.keys.values())) if len(self.keys) == 1 else None
            )
            if key is None:
                raise NotAuthenticated("the token is signed with a key the provider's JWKS does not list")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated(f"the identity provider's token is not valid: {exc}") from None
        user = str(claims.get(self.user_claim) or claims.get("sub") or "")
        if not user:
            raise NotAuthenticated(f"the token names no user ({self.user_claim} or sub)")
        granted = claims.get(self.roles_claim) or []
        if isinstance(granted, str):
            granted = granted.split()
        roles = tuple(r for r in granted if isinstance(r, str) and r in known)
        return Identity(user, roles, choose_role(user, roles, asked_role), via="oidc")


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header."""
    if not authorization:
        raise NotAuthenticated("no credentials: send Authorization: Bearer TOKEN (pathway tokens create)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be: Bearer TOKEN")
    return token.strip()


def authenticate(
    identities: Identities,
    oidc: Oidc | None,
    known_roles: set[str],
    authorization: str | None,
    asked_role: str | None,
) -> Identity:
    token = bearer(authorization)
    asked = asked_role.strip() if asked_role else None
    if oidc is not None and token.count(".") == 2:
        return oidc.identity(token, asked, known_roles)
    return identities.authenticate(token, asked)
