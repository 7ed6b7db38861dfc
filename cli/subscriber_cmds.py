"""`pathway subscribers`: the receivers of the outbox, each with its own cursor."""

from __future__ import annotations

from typing import Any

import click

from .app import Exit, cli, json_option, settings
from .output import emit_json, table


@cli.group()
def subscribers() -> None:
    """Receivers of the outbox: webhooks signed per the Standard Webhooks spec, or AMQP
    exchanges (RabbitMQ, publisher confirms). Each has its own cursor, retries with
    back-off, dead letters and replay; `subscribers deliver` sends to all of them.
    (`outbox deliver --url` remains a one-receiver shortcut with its own delivered flag.)"""


@subscribers.command("add")
@click.argument("name")
@click.option("--url", help="A webhook: POST each message here (http:// or https://).")
@click.option("--amqp", help="Or an AMQP broker, e.g. amqp://guest:guest@127.0.0.1:5672/%2F.")
@click.option("--exchange", help="With --amqp: the topic exchange (routing key: the message type).")
@click.option("--type", "types", multiple=True, help="Only this message type (repeatable; default all).")
@click.option("--pathway", help="Only messages of this pathway.")
@click.option(
    "--skip-dead",
    is_flag=True,
    help="Let an enrollment's later messages go on past a dead letter (default: hold them, keep order).",
)
@click.option("--max-attempts", type=int, default=8, show_default=True, help="Failures before a dead letter.")
@json_option
def subscribers_add(
    name: str,
    url: str | None,
    amqp: str | None,
    exchange: str | None,
    types: tuple[str, ...],
    pathway: str | None,
    skip_dead: bool,
    max_attempts: int,
    as_json: bool,
) -> None:
    """Add subscriber NAME. It receives what is written from now on (`replay --from 1`
    sends the history). A webhook's signing secret is printed once: give it to the
    receiver, which checks each message's webhook-signature with it."""
    made = (
        settings()
        .clinic()
        .add_subscriber(
            name,
            url=url,
            amqp=amqp,
            exchange=exchange,
            types=types,
            pathway=pathway,
            skip_dead=skip_dead,
            max_attempts=max_attempts,
        )
    )
    if as_json:
        emit_json(made)
        return
    click.echo(f"added {made['kind']} subscriber {made['name']}")
    if made["secret"]:
        click.echo(f"signing secret (shown once): {made['secret']}")


@subscribers.command("list")
@json_option
def subscribers_list(as_json: bool) -> None:
    """The subscribers, their filters and how many messages each has still to settle."""
    found = settings().clinic().subscribers()
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            s["name"],
            s["kind"],
            s["url"] + (f" ({s['exchange']})" if s["exchange"] else ""),
            ", ".join(s["types"]) or "all",
            s["pathway"] or "all",
            s["lag"],
            "disabled" if s["disabled_at"] else "",
        )
        for s in found
    ]
    headers = ("name", "kind", "to", "types", "pathway", "waiting", "")
    click.echo(table(headers, rows) if rows else "no subscribers (subscribers add NAME --url URL)")


@subscribers.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable it again (it goes on from its cursor).")
@json_option
def subscribers_disable(name: str, enable: bool, as_json: bool) -> None:
    """Stop delivering to NAME (its cursor is kept), or with --enable, start again."""
    found = settings().clinic().subscriber_action("disable", name, enable=enable)
    emit_json(found) if as_json else click.echo(f"{'enabled' if enable else 'disabled'} {found['name']}")


@subscribers.command("deliver")
@click.option("--follow", is_flag=True, help="Keep running, delivering new messages as they come.")
@click.option(
    "--interval", type=click.FloatRange(0.1), default=2.0, show_default=True, help="Seconds between passes."
)
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=200, show_default=True, help="Messages per pass."
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="First back-off, in seconds.",
)
@json_option
def subscribers_deliver(follow: bool, interval: float, batch: int, retry_delay: float, as_json: bool) -> None:
    """Send each subscriber the messages after its cursor, in order per enrollment, at least
    once. Several may run at once: each subscriber is served by one at a time (a lease).
    Exit 1 when a message failed (and will be retried) or became a dead letter; --follow
    runs until SIGTERM or Ctrl-C."""
    import signal
    import threading

    clinic = settings().clinic()
    stop = threading.Event()
    if follow:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    total: dict[str, Any] = {"delivered": {}, "failed": {}, "dead": {}}
    while True:
        report = clinic.deliver_subscribers(batch=batch, base=retry_delay).to_dict()
        for kind, counts in report.items():
            for name, n in counts.items():
                total[kind][name] = total[kind].get(name, 0) + n
        if follow and not as_json and any(report.values()):
            click.echo(_summary(report), err=True)
        if not follow or stop.wait(interval):
            break
    if as_json:
        emit_json(total)
    else:
        click.echo(_summary(total))
    if (total["failed"] or total["dead"]) and not follow:
        raise Exit(1)


def _summary(report: dict[str, dict[str, int]]) -> str:
    parts = [f"{kind} {sum(counts.values())}" for kind, counts in report.items()]
    by = sorted({n for counts in report.values() for n in counts})
    detail = "; ".join(f"{n}: " + ", ".join(f"{k} {report[k].get(n, 0)}" for k in report) for n in by)
    return ", ".join(parts) + (f" ({detail})" if detail else "")


@subscribers.command("deadletters")
@click.argument("name")
@json_option
def subscribers_deadletters(name: str, as_json: bool) -> None:
    """The messages NAME could not be given (after --max-attempts, or refused with a 4xx)."""
    found = settings().clinic().subscriber_action("dead_letters", name)
    if as_json:
        emit_json(found)
        return
    rows = [
        (d["message"]["id"], d["message"]["type"], d["attempts"], d["last_error"] or "", d["dead_at"])
        for d in found
    ]
    click.echo(
        table(("message", "type", "attempts", "last error", "dead since"), rows)
        if rows
        else "no dead letters"
    )


@subscribers.command("retry")
@click.argument("name")
@click.argument("message_id", required=False)
@json_option
def subscribers_retry(name: str, message_id: str | None, as_json: bool) -> None:
    """Send NAME's dead letters again (or only MESSAGE_ID) on the next delivery pass."""
    count = settings().clinic().subscriber_action("retry", name, message_id)
    emit_json({"subscriber": name, "revived": count}) if as_json else click.echo(
        f"{count} dead letter(s) to retry"
    )


@subscribers.command("replay")
@click.argument("name")
@click.option("--from", "start", required=True, help="A message id, or an outbox row number (1: everything).")
@json_option
def subscribers_replay(name: str, start: str, as_json: bool) -> None:
    """Deliver to NAME again every message from --from on (receivers deduplicate on id)."""
    found = settings().clinic().subscriber_action("replay", name, start)
    emit_json(found) if as_json else click.echo(f"{found['name']} goes on after outbox row {found['cursor']}")
