"""The reports as a manager reads them: words for headers, units said, figures rounded the
same way (days and weeks to one decimal, shares to whole percent, patient-days to whole
days), the bottleneck named, and the caveats a figure needs beside it."""

from __future__ import annotations

from typing import Any

from .output import table

NOTE_DAYS = "Days are calendar days in the clinic's time zone."


def _num(value: Any, places: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{places}f}" if isinstance(value, float) else f"{value:,}"


def _pct(part: int | None, whole: int | None) -> str:
    return "-" if not whole or part is None else f"{round(100 * part / whole)}%"


def bottlenecks_text(data: dict[str, Any]) -> list[str]:
    lines = [*data["states"], *([data["hold"]] if data["hold"] else [])]
    rows = []
    for line in lines:
        done = line["breaches_completed"]
        rows.append(
            [
                f"{line['state']} (planned)" if line["planned"] else line["state"],
                _num(line["sla_days"]),
                _num(line["entries"]),
                _num(line["exits"]),
                _num(line["wip"]),
                _num(line["median_days"]),
                _num(line["p90_days"]),
                _num(line["max_days"]),
                _num(line["open_median_days"]),
                f"{_num(done)} ({_pct(done, line['exits'])})",
                _num(line["breaches_open"]),
                _num(round(line["patient_days"]) if line["patient_days"] is not None else None),
            ]
        )
    headers = [
        "state",
        "SLA days",
        "entered",
        "left",
        "waiting now",
        "median days",
        "90th pct days",
        "longest days",
        "open: median days",
        "left after SLA",
        "over SLA now",
        "patient-days",
    ]
    out = [table(headers, rows), ""]
    # The bottleneck, named, with the share of its completed stays that breached.
    out.append(data["summary"])
    named = next((x for x in lines if not x["planned"] and x["state"] in data["summary"]), None)
    if named is not None and named["exits"]:
        out.append(
            f"In {named['state']}, {_pct(named['breaches_completed'], named['exits'])} of the "
            f"{named['exits']:,} completed stays ran past the {named['sla_days']}-day SLA."
        )
    out.append(
        f"{NOTE_DAYS} Median, 90th percentile and longest are of completed stays; 'open' stays are "
        "still going on (their time so far). 'left after SLA' counts completed stays longer than "
        "the SLA (and their share of those that left)."
    )
    if any(x["planned"] for x in lines):
        out.append("(planned) states are planned care, such as recovery and follow-up: listed, not waiting.")
    return out


def rtt_text(data: dict[str, Any]) -> list[str]:
    standard, target = data["standard_weeks"] or 18, data["target_pct"] or 92
    out = []
    if data["within_pct"] is None:
        out.append("Still waiting: nobody, so the standard does not apply.")
    else:
        verdict = "meets" if data["meets_target"] else "misses"
        out.append(
            f"Still waiting: {data['incomplete']:,} patients; {data['within_standard']:,} of them within "
            f"{standard} weeks of referral ({data['within_pct']:.0f}%: {verdict} the {target:.0f}% standard)."
        )
    if data["at_risk"]:
        out.append(f"At or near breach ({data['at_risk_weeks']}+ weeks on the clock):")
        out.append(
            table(
                ["patient", "pathway", "weeks waiting", "breached"],
                [
                    [r["patient"], r["pathway"], _num(r["weeks"]), "yes" if r["breached"] else ""]
                    for r in data["at_risk"]
                ],
            )
        )
    months = data["completed_by_month"]
    if months:
        pct = data.get("percentile") or 92
        out.append("Treated or decided, by month of referral (weeks from referral):")
        rows = []
        for m in months:
            mark = "*" if m.get("still_waiting") else ""
            rows.append(
                [
                    m["month"] + mark,
                    _num(m["pathways"]),
                    _num(m["median_weeks"]),
                    _num(m.get("percentile_weeks", m.get("p92_weeks"))),
                    f"{m['within_pct']:.0f}%",
                    _num(m.get("still_waiting") or 0),
                ]
            )
        out.append(
            table(
                [
                    "referred in",
                    "completed",
                    "median weeks",
                    f"{pct:.0f}th pct weeks",
                    f"within {standard} weeks",
                    "still waiting",
                ],
                rows,
            )
        )
        if any(m.get("still_waiting") for m in months):
            out.append(
                "* still open: some patients referred that month are still waiting, so the month "
                "shows only its faster pathways and will look slower once they complete."
            )
    return out


def outcomes_text(data: dict[str, Any]) -> list[str]:
    out = []
    for p in data.get("pathways") or [data]:
        name = p.get("pathway", "all pathways")
        label = p.get("label") or "follow-up"
        if not p["treated"]:
            out.append(f"{name}: no treatments yet.")
            continue
        window = p.get("window_days") or [None, None]
        measure = p.get("measure", "the measure")
        threshold = _num(p.get("success_relief_pct"), 0)
        out.append(
            f"{name}: {label} outcome ({measure}, success = relief of at least {threshold}% from baseline)"
        )
        out.append(
            f"  treated: {p['treated']:,}; followed long enough (window closed): {p['window_closed']:,}"
        )
        out.append(
            f"  successes: {p['successes']:,} of {p['with_follow_up']:,} with a follow-up in days "
            f"{window[0]}-{window[1]} ({_pct(p['successes'], p['with_follow_up'])}); "
            f"{p['successes']:,} of {p['window_closed']:,} treated "
            f"({_pct(p['successes'], p['window_closed'])})"
        )
        out.append(f"  without a follow-up in the window: {p['without_follow_up']:,}")
        if p.get("mean_change") is not None:
            out.append(f"  mean change in {p.get('measure', 'the measure')}: {_num(p['mean_change'])} points")
        secondary = p.get("secondary")
        if secondary and p.get("secondary_mean_change") is not None:
            out.append(
                f"  {secondary['label']}: mean change {_num(p['secondary_mean_change'])} points; "
                f"{_num(p['secondary_meaningful_pct'], 0)}% improved by at least "
                f"{_num(secondary['meaningful_change'], 0)}"
            )
        if p.get("repeat"):
            share = _pct(p["repeats"], p["treated"])
            out.append(f"  repeated ({p['repeat']}): {p['repeats']:,} of {p['treated']:,} ({share})")
    out.append(
        "Counted: patients whose first treatment is at least the window's end old (clarification 9); "
        "the follow-up judged is the one in the window closest to the target day."
    )
    return out
