"""Turning API results into text for people (JSON comes from each result's `to_dict`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TextIO

import click


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def emit_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """Rows as CSV on standard output: a header of `fields`, then each row's values of them."""
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def day(iso_text: str | None) -> str:
    return (iso_text or "")[:10]


def checks_text(checks: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    lines = []
    for c in checks:
        reasons = c["reasons"]
        only_reason = bool(reasons) and all(r["guard"] == "reason_given" for r in reasons)
        mark = "ok     " if c["allowed"] or only_reason else "blocked"
        notes = []
        if only_reason:
            notes.append("give --reason")
        if not c["role_allowed"]:
            notes.append(f"needs {' or '.join(c['roles'])}")
        note = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"{indent}{mark}  {c['trigger']} -> {c['to']}{note}")
        if not only_reason:
            for r in reasons:
                lines.append(f"{indent}           - {r['message']}")
    return lines


def status_text(s: dict[str, Any]) -> str:
    who = s["patient"] + (f"  {s['name']}" if s.get("name") else "")
    sla = f", SLA {s['sla_days']} d" if s.get("sla_days") else ""
    overdue = "  OVERDUE" if s["overdue"] else ""
    held = f" (held from {s['held_from']})" if s.get("held_from") else ""
    lines = [
        who,
        f"  pathway  {s['pathway']} v{s['version']} (profile {s['profile']})",
        f"  state    {s['state']}{held} since {s.get('since_day') or day(s['since'])} "
        f"({s['days_in_state']} days{sla}){overdue}",
    ]
    zone = s.get("timezone", "UTC")
    unset = " (the default; pathway db set timezone Area/City)" if zone == "UTC" else ""
    lines.append(f"  dates    in the clinic's time zone, {zone}{unset}")
    if not s["open"]:
        lines.append(f"  closed   {day(s['closed_at'])}")
    if s["triggers"]:
        lines.append("  next:")
        lines += checks_text(s["triggers"], indent="    ")
    return "\n".join(lines)


@contextmanager
def whole_file(path: str | None, *, newline: str | None = None) -> Iterator[TextIO]:
    """Write to `path` whole or not at all: into PATH.partial, renamed over PATH only when
    everything is written, so a file that exists is complete. A path that cannot be
    written is one clear error; None or "-" is standard output."""
    from pathway.errors import PathwayError

    if path is None or path == "-":
        yield sys.stdout
        return
    partial = path + ".partial"
    try:
        handle = open(partial, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
    except OSError as exc:
        raise PathwayError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        with handle:
            yield handle
        os.replace(partial, path)
    except BaseException:
        with suppress(OSError):
            os.remove(partial)
        raise


def write_page(path: str, page: str) -> None:
    """Write `page` to `path` whole or not at all ("-": standard output)."""
    with whole_file(path) as handle:
        handle.write(page)
