"""The clinic service's identities: `users`, `tokens` and `audit access`."""

from __future__ import annotations

import click

from .admin import audit
from .app import cli, json_option, settings
from .output import emit_json, table


@cli.group()
def users() -> None:
    """The people and systems that may call the clinic service (`pathway serve`).

    Each user has one or more roles; a request acts in one of them. Tokens
    (`pathway tokens create`) let a user call the HTTP API; a password lets them
    sign in to the workspace.
    """


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role of the user (repeatable).")
@click.option(
    "--password",
    "ask_password",
    is_flag=True,
    help="Ask for a password (typed twice, not shown) for signing in to the workspace.",
)
@json_option
def users_add(name: str, roles: tuple[str, ...], ask_password: bool, as_json: bool) -> None:
    """Add user NAME with the given roles."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if ask_password else None
    user = settings().clinic(create=True).identities.add_user(name, roles, password)
    if as_json:
        emit_json(user)
    else:
        click.echo(f"added user {user['name']} ({', '.join(user['roles'])})")


@users.command("list")
@json_option
def users_list(as_json: bool) -> None:
    """List the users, their roles and whether they are disabled."""
    found = settings().clinic().identities.users()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no users (users add NAME --role ROLE adds one)")
        return
    rows = [
        (u["name"], ", ".join(u["roles"]), "yes" if u["password"] else "no", u["disabled_at"] or "-")
        for u in found
    ]
    click.echo(table(("user", "roles", "password", "disabled"), rows))


@users.command("disable")
@click.argument("name")
@json_option
def users_disable(name: str, as_json: bool) -> None:
    """Disable user NAME: their tokens and workspace sessions stop working at once."""
    user = settings().clinic().identities.disable(name)
    emit_json(user) if as_json else click.echo(f"disabled user {user['name']}")


@users.command("enable")
@click.argument("name")
@json_option
def users_enable(name: str, as_json: bool) -> None:
    """Enable user NAME again (their unrevoked, unexpired tokens work again)."""
    user = settings().clinic().identities.disable(name, enable=True)
    emit_json(user) if as_json else click.echo(f"enabled user {user['name']}")


@users.command("roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="The user's roles (repeatable).")
@json_option
def users_roles(name: str, roles: tuple[str, ...], as_json: bool) -> None:
    """Replace the roles of user NAME."""
    user = settings().clinic().identities.set_roles(name, roles)
    emit_json(user) if as_json else click.echo(f"{user['name']}: {', '.join(user['roles'])}")


@users.command("password")
@click.argument("name")
@json_option
def users_password(name: str, as_json: bool) -> None:
    """Set the workspace password of user NAME (asked twice, not shown; unlocks them)."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings().clinic().identities.set_password(name, password)
    emit_json({"user": name, "password": True}) if as_json else click.echo(f"password set for {name}")


@cli.group()
def tokens() -> None:
    """Bearer tokens for the HTTP API (`Authorization: Bearer TOKEN`)."""


@tokens.command("create")
@click.argument("name")
@click.option("--expires", "expires_days", type=int, help="Days until the token expires (default never).")
@json_option
def tokens_create(name: str, expires_days: int | None, as_json: bool) -> None:
    """Create a token for user NAME and print it. It is shown only now: only a hash of it
    is stored, so keep it where the calling system keeps secrets."""
    made = settings().clinic().identities.create_token(name, expires_days=expires_days)
    if as_json:
        emit_json(made)
    else:
        click.echo(made["token"])
        expiry = f", expires {made['expires_at']}" if made["expires_at"] else ""
        click.echo(f"token {made['prefix']}... for {made['user']}{expiry}: shown once", err=True)


@tokens.command("list")
@click.argument("name", required=False)
@json_option
def tokens_list(name: str | None, as_json: bool) -> None:
    """List tokens (of user NAME, or everyone's) by their first characters; never the tokens."""
    found = settings().clinic().identities.tokens(name)
    if as_json:
        emit_json(found)
        return
    rows = [
        (t["user"], t["prefix"] + "...", t["created_at"], t["expires_at"] or "never", t["revoked_at"] or "-")
        for t in found
    ]
    click.echo(table(("user", "token", "created", "expires", "revoked"), rows) if rows else "no tokens")


@tokens.command("revoke")
@click.argument("name")
@click.argument("prefix", required=False)
@json_option
def tokens_revoke(name: str, prefix: str | None, as_json: bool) -> None:
    """Revoke the token of user NAME that starts with PREFIX (as `tokens list` shows it),
    or every token of the user. Requests with it are refused at once."""
    count = settings().clinic().identities.revoke(name, prefix.rstrip(".") if prefix else None)
    emit_json({"user": name, "revoked": count}) if as_json else click.echo(f"revoked {count} token(s)")


@audit.command("access")
@click.argument("patient")
@json_option
def audit_access(patient: str, as_json: bool) -> None:
    """Who read PATIENT's data through the clinic service: when, as whom, in which role,
    and what they read (oldest first)."""
    found = settings().clinic().identities.accesses(patient)
    if as_json:
        emit_json(found)
        return
    rows = [(a["at"], a["actor"], a["role"], a["what"]) for a in found]
    click.echo(
        table(("when", "who", "role", "what"), rows) if rows else "no reads through the service logged"
    )
