"""`pathway show PATIENT`: the patient on one screen."""

from __future__ import annotations

from typing import Any

import click

from .app import cli, json_option, settings
from .output import checks_text, day, emit_json


@cli.command()
@click.argument("patient")
@click.option("--limit", type=click.IntRange(1), default=12, show_default=True, help="Observations shown.")
@json_option
def show(patient: str, limit: int, as_json: bool) -> None:
    """PATIENT on one screen: each episode (newest first) with its state and days against
    the SLA, the referral-to-treatment clock, what each possible step still needs, and the
    latest observations with their values (corrections marked: who, when, why).

    --json gives everything, every observation included."""
    view = settings().clinic().patient_view(patient)
    if as_json:
        emit_json(view)
        return
    click.echo("\n".join(view_text(view, limit)))


def view_text(view: dict[str, Any], limit: int) -> list[str]:
    lines = [view["patient"] + (f"  {view['name']}" if view.get("name") else "")]
    for i, e in enumerate(view["episodes"]):
        earlier = "" if i == 0 else "  (earlier episode)"
        lines.append(f"{e['title']} ({e['pathway']} v{e['version']}){earlier}")
        span = (
            f"{day(e['opened_at'])} to {day(e['closed_at'])}"
            if not e["open"]
            else f"since {day(e['opened_at'])}"
        )
        lines.append(f"  episode  {span}")
        if e["open"]:
            held = f", held from {e['held_from']}" if e["held_from"] else ""
            sla = f" of an SLA of {e['sla_days']}" if e["sla_days"] else ""
            late = "  OVER SLA" if e["overdue"] else ""
            lines.append(f"  state    {e['state']}{held}: {e['days_in_state']} days{sla}{late}")
        else:
            lines.append(f"  state    {e['state']} (closed)")
        clock = e["rtt"]
        if clock is not None:
            weeks = f"{clock['weeks']:.1f} weeks of {clock['standard_weeks']}"
            if clock["running"]:
                mark = "  BREACHED" if clock["breached"] else "  at risk" if clock["at_risk"] else ""
                lines.append(f"  RTT      running: day {clock['days']} ({weeks}){mark}")
            else:
                lines.append(
                    f"  RTT      stopped by {clock['stopped_by']} on {day(clock['stopped'])}: {weeks}"
                )
        if e["next"]:
            lines.append("  next:")
            lines += checks_text(e["next"], indent="    ")
    observations = view["observations"]
    if observations:
        lines.append(f"observations (newest first, {min(limit, len(observations))} of {len(observations)}):")
        for o in observations[:limit]:
            values = ", ".join(f"{k}={_value(v)}" for k, v in o["data"].items()) or "-"
            lines.append(f"  {day(o['at'])}  #{o['id']} {o['kind']}: {values}  ({o['actor']}, {o['role']})")
            if o["entered_in_error"]:
                lines.append(
                    f"      entered in error: {o['error_reason']} ({o['error_actor']}, {day(o['error_at'])})"
                )
    else:
        lines.append("observations: none yet")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
