"""Who may use the clinic service: users with roles, their bearer tokens, sign-in with a
password, and the log of who read a patient's data.

A bearer token is 32 random bytes (`pw_` and URL-safe base64); only its SHA-256 is
stored, which is enough for a secret of that strength and costs one indexed lookup per
request (argon2 is for passwords, which people choose). A password is kept as an argon2id
hash; five failed sign-ins lock a user out for 15 minutes.

Actor and role of every change made through the service come from here: the user's
name, and one of the user's roles (the one the request names when there are several).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pathway.domain.timeutil import iso, utcnow
from pathway.errors import InvalidInput, NotAuthenticated, NotFound, RoleRefused
from pathway.service.inputs import check_patient_id, check_text
from pathway.store import identity as rows
from pathway.store import requests
from pathway.store.repository import Store

TOKEN_PREFIX = "pw_"
MAX_FAILED_SIGN_INS = 5
LOCK_OUT = timedelta(minutes=15)
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so the time taken does not tell.
_DUMMY = _hasher.hash("not a password of anyone")


def digest(secret: str) -> str:
    """The SHA-256 (hex) a token or session cookie is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """An authenticated caller acting in one role."""

    user: str
    roles: tuple[str, ...]
    role: str
    user_id: int | None = None
    via: str = "token"

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "roles": list(self.roles), "role": self.role, "via": self.via}


def choose_role(user: str, roles: Sequence[str], asked: str | None) -> str:
    """The role a request acts in: the one asked for (it must be the user's), or the user's
    only role; a user with several must name one (X-Pathway-Role)."""
    if asked:
        if asked not in roles:
            raise RoleRefused(
                f"{user} does not have the role {asked!r} (roles: {', '.join(roles) or 'none'})", roles
            )
        return asked
    if len(roles) == 1:
        return roles[0]
    if not roles:
        raise RoleRefused(f"{user} has no role: users add or a role claim gives one", ())
    raise InvalidInput(f"X-Pathway-Role: {user} has several roles; name one of {', '.join(roles)}")


class Identities:
    """Users, tokens and sign-in over a store; `known_role` refuses a role no pathway has."""

    def __init__(self, store: Store, known_role: Callable[[str | None], str | None]) -> None:
        self.store = store
        self.known_role = known_role

    # users ------------------------------------------------------------------------------
    def add_user(self, name: str, roles: Sequence[str], password: str | None = None) -> dict[str, Any]:
        name = _user_name(name)
        checked = self._roles(roles)
        hashed = None if password is None else _hasher.hash(_password(password))
        with self.store.write() as tx:
            rows.add_user(tx, name, checked, hashed, utcnow())
            return _public(rows.user(tx, name) or {})

    def users(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return [_public(u) for u in rows.all_users(tx)]

    def set_password(self, name: str, password: str) -> None:
        hashed = _hasher.hash(_password(password))
        with self.store.write() as tx:
            found = self._user(tx, name)
            rows.change_user(tx, found["id"], password_hash=hashed, failed_logins=0, locked_until=None)

    def set_roles(self, name: str, roles: Sequence[str]) -> dict[str, Any]:
        checked = self._roles(roles)
        with self.store.write() as tx:
            found = self._user(tx, name)
            rows.change_user(tx, found["id"], roles=checked)
            return _public(rows.user(tx, found["name"]) or {})

    def disable(self, name: str, *, enable: bool = False) -> dict[str, Any]:
        """Disable a user (their tokens and sessions stop working at once), or enable again."""
        now = utcnow()
        with self.store.write() as tx:
            found = self._user(tx, name)
            rows.change_user(tx, found["id"], disabled_at=None if enable else now)
            if not enable:
                rows.end_sessions(tx, at=now, user_id=found["id"])
            return _public(rows.user(tx, found["name"]) or {})

    # tokens -----------------------------------------------------------------------------
    def create_token(self, name: str, *, expires_days: int | None = None) -> dict[str, Any]:
        """A new bearer token for the user: the token itself is in the result, and only here."""
        if expires_days is not None and not 1 <= expires_days <= 3650:
            raise InvalidInput("--expires: a number of days from 1 to 3650")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        prefix = token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8]
        now = utcnow()
        expires = None if expires_days is None else now + timedelta(days=expires_days)
        with self.store.write() as tx:
            found = self._user(tx, name)
            if found["disabled_at"] is not None:
                raise InvalidInput(f"user: {found['name']} is disabled (users enable first)")
            rows.add_token(tx, found["id"], digest(token), prefix, now, expires)
        return {"user": found["name"], "token": token, "prefix": prefix, "expires_at": iso(expires)}

    def tokens(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            user_id = None if name is None else self._user(tx, name)["id"]
            return [
                {
                    "user": t["user"],
                    "prefix": t["prefix"],
                    "created_at": iso(t["created_at"]),
                    "expires_at": iso(t["expires_at"]),
                    "revoked_at": iso(t["revoked_at"]),
                }
                for t in rows.tokens_of(tx, user_id)
            ]

    def revoke(self, name: str, prefix: str | None = None) -> int:
        """Revoke the user's tokens (the one starting `prefix`, or all); how many were revoked."""
        with self.store.write() as tx:
            found = self._user(tx, name)
            count = rows.revoke_tokens(tx, at=utcnow(), user_id=found["id"], prefix=prefix)
        if prefix is not None and count == 0:
            raise NotFound(f"token: {found['name']} has no live token starting {prefix!r} (tokens list)")
        return count

    # authentication ---------------------------------------------------------------------
    def authenticate(self, token: str, role: str | None = None) -> Identity:
        """The identity of a bearer token, acting in `role` (see `choose_role`)."""
        found = rows.token_owner_now(self.store, digest(token))
        now = utcnow()
        if found is None or found["revoked_at"] is not None:
            raise NotAuthenticated("the token is not known or was revoked")
        if found["expires_at"] is not None and found["expires_at"] <= now:
            raise NotAuthenticated("the token has expired: tokens create makes a new one")
        if found["disabled_at"] is not None:
            raise NotAuthenticated("the token's user is disabled")
        roles = tuple(found["roles"])
        return Identity(found["name"], roles, choose_role(found["name"], roles, role), found["user_id"])

    def sign_in(self, name: str, password: str) -> dict[str, Any]:
        """The user row when the password is right; counts failures and locks out after
        `MAX_FAILED_SIGN_INS` for `LOCK_OUT`. The error never says which part was wrong."""
        wrong = NotAuthenticated("unknown user or wrong password")
        now = utcnow()
        with self.store.write() as tx:  # the failure count commits; the error is raised after
            found = rows.user(tx, name.strip()) if name else None
            if found is None or not found["password_hash"] or found["disabled_at"] is not None:
                _verify(_DUMMY, password)
                raise wrong
            locked_until = found["locked_until"]
            if locked_until is not None and locked_until > now:
                raise NotAuthenticated(f"too many failed sign-ins: try again after {iso(locked_until)}")
            right = _verify(found["password_hash"], password)
            if not right:
                failed = int(found["failed_logins"]) + 1
                locked = now + LOCK_OUT if failed >= MAX_FAILED_SIGN_INS else None
                rows.change_user(tx, found["id"], failed_logins=0 if locked else failed, locked_until=locked)
            elif found["failed_logins"] or locked_until is not None:
                rows.change_user(tx, found["id"], failed_logins=0, locked_until=None)
        if not right:
            raise wrong
        return found

    # workspace sessions -------------------------------------------------------------------
    def open_session(self, user: dict[str, Any], role: str, hours: int = 8) -> tuple[str, str]:
        """A signed-in browser: (the cookie's secret, the session's CSRF token). Only a
        SHA-256 of the secret is stored."""
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = utcnow()
        with self.store.write() as tx:
            rows.add_session(tx, digest(secret), user["id"], role, csrf, now, now + timedelta(hours=hours))
        return secret, csrf

    def session(self, secret: str) -> tuple[Identity, str]:
        """(the identity, the CSRF token) of a live session; NotAuthenticated otherwise."""
        now = utcnow()
        with self.store.read() as tx:
            found = rows.session(tx, digest(secret))
            user = rows.user_by_id(tx, found["user_id"]) if found else None
        if found is None or user is None or found["ended_at"] is not None or found["expires_at"] <= now:
            raise NotAuthenticated("not signed in, or the session has ended: sign in")
        if user["disabled_at"] is not None:
            raise NotAuthenticated("the user is disabled")
        roles = tuple(user["roles"])
        role = found["role"] if found["role"] in roles else choose_role(user["name"], roles, None)
        return Identity(user["name"], roles, role, user["id"], via="session"), found["csrf"]

    def end_session(self, secret: str) -> None:
        with self.store.write() as tx:
            rows.end_sessions(tx, at=utcnow(), digest=digest(secret))

    # who looked -------------------------------------------------------------------------
    def log_access(self, identity: Identity, patients: str | Sequence[str], what: str) -> None:
        """Write who read `patients`' data (one or several identifiers), and what."""
        shown = [patients] if isinstance(patients, str) else list(dict.fromkeys(patients))
        with self.store.write() as tx:
            requests.log_access(
                tx, at=utcnow(), actor=identity.user, role=identity.role, patients=shown, what=what
            )

    def accesses(self, patient: str) -> list[dict[str, Any]]:
        check_patient_id(patient)
        with self.store.read() as tx:
            return [{**a, "at": iso(a["at"])} for a in requests.accesses(tx, patient)]

    # helpers ----------------------------------------------------------------------------
    def _roles(self, roles: Sequence[str]) -> list[str]:
        if not roles:
            raise InvalidInput("--role: give the user at least one role")
        checked = [self.known_role(r) for r in roles]
        return list(dict.fromkeys(r for r in checked if r))

    @staticmethod
    def _user(tx: Any, name: str) -> dict[str, Any]:
        found = rows.user(tx, _user_name(name))
        if found is None:
            raise NotFound("user: no such user (users list shows them)")
        return found


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


def _user_name(name: str) -> str:
    checked = check_text(name, "user", 100, one_line=True)
    if checked is None:
        raise InvalidInput("user: empty: give a user name")
    return checked


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    if check_text(password, "password", 1000) != password:
        raise InvalidInput("password: no control characters or surrounding spaces")
    return password


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": user.get("name"),
        "roles": list(user.get("roles") or ()),
        "password": bool(user.get("password_hash")),
        "created_at": iso(user.get("created_at")),
        "disabled_at": iso(user.get("disabled_at")),
    }
