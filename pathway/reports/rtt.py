"""Referral to treatment (RTT): how long patients wait from referral to treatment, against
each pathway's standard, computed in the database.

Each workflow file declares its clock (`rtt:` in the file; `RttClock`): the state whose
entry starts it, the triggers (treatment) and states (decisions not to treat) that stop
it, the standard in weeks, the target share and when a wait is "at risk". Pathways
without a clock are not in this report. Waits count calendar days (UTC dates), so day
126 is within 18 weeks whatever the time of day; holds do not pause the clock.
Incomplete pathways (clock running at the as-of time) are judged against the standard;
completed ones are summarised by month of referral.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from pathway.definitions.catalog import Catalog
from pathway.domain.declarations import RttClock
from pathway.domain.timeutil import iso
from pathway.reports import sql
from pathway.store.repository import Store


@dataclass(frozen=True)
class PathwayRtt:
    """One pathway's incomplete waits against its own standard."""

    pathway: str
    clock: RttClock
    incomplete: int
    within_standard: int

    @property
    def within_pct(self) -> float | None:
        return round(100 * self.within_standard / self.incomplete, 1) if self.incomplete else None

    @property
    def meets_target(self) -> bool:
        pct = self.within_pct
        return pct is None or pct >= self.clock.target_pct

    def to_dict(self) -> dict[str, Any]:
        return {
            "pathway": self.pathway,
            "standard_weeks": self.clock.standard_weeks,
            "target_pct": self.clock.target_pct,
            "at_risk_weeks": self.clock.at_risk_weeks,
            "incomplete": self.incomplete,
            "within_standard": self.within_standard,
            "within_pct": self.within_pct,
            "meets_target": self.within_pct is not None and self.meets_target,
        }


@dataclass(frozen=True)
class RttReport:
    as_of: datetime
    incomplete: int
    within_standard: int
    within_pct: float | None
    by_weeks: dict[int, int]
    at_risk: list[dict[str, Any]]
    completed_by_month: list[dict[str, Any]]
    closed_without_stop: int
    pathways: tuple[PathwayRtt, ...] = field(default=())
    #: The percentile of completed waits reported per month (the target share).
    percentile: float = 92.0

    def _uniform(self, name: str) -> Any:
        values = {getattr(p.clock, name) for p in self.pathways}
        return values.pop() if len(values) == 1 else None

    @property
    def standard_weeks(self) -> int | None:
        """The standard, when every pathway in the report has the same one."""
        value = self._uniform("standard_weeks")
        return None if value is None else int(value)

    @property
    def target_pct(self) -> float | None:
        value = self._uniform("target_pct")
        return None if value is None else float(value)

    @property
    def at_risk_weeks(self) -> int | None:
        value = self._uniform("at_risk_weeks")
        return None if value is None else int(value)

    @property
    def meets_target(self) -> bool:
        """Every pathway within its target share (nobody waiting meets it)."""
        return self.within_pct is not None and all(p.meets_target for p in self.pathways)

    def summary(self) -> str:
        """The report in one sentence, as the text and HTML reports and the demo say it."""
        if not self.pathways:
            return "Referral to treatment: no pathway declares a clock."
        if self.within_pct is None:
            return "Referral to treatment: nobody is waiting."
        standard, target, risk = self.standard_weeks, self.target_pct, self.at_risk_weeks
        within = f"within {standard} weeks" if standard is not None else "within their pathway's standard"
        goal = f"the {target:g}% standard" if target is not None else "each pathway's target"
        soon = f" ({risk}+ weeks)" if risk is not None else ""
        return (
            f"Referral to treatment: {self.incomplete:,} waiting, {self.within_pct}% {within} "
            f"({'meets' if self.meets_target else 'misses'} {goal}); "
            f"{len(self.at_risk):,} at or near breach{soon}."
        )

    def clock_text(self) -> str:
        """Where the clocks start and stop, in words from the workflow files."""
        parts = []
        for line in self.pathways:
            clock = line.clock
            stops = [f"the first {t}" for t in clock.stop_triggers]
            if clock.stop_states:
                stops.append("entering " + _either(clock.stop_states))
            parts.append(f"{line.pathway}: from entering {clock.start} to {_either(stops)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": iso(self.as_of),
            "standard_weeks": self.standard_weeks,
            "target_pct": self.target_pct,
            "at_risk_weeks": self.at_risk_weeks,
            "incomplete": self.incomplete,
            "within_standard": self.within_standard,
            "within_pct": self.within_pct,
            "meets_target": self.meets_target,
            "incomplete_by_weeks": self.by_weeks,
            "at_risk": self.at_risk,
            "completed_by_month": self.completed_by_month,
            "percentile": self.percentile,
            "closed_without_stop": self.closed_without_stop,
            "pathways": [p.to_dict() for p in self.pathways],
        }


def _either(names: list[str] | tuple[str, ...]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def clocks(catalog: Catalog, pathway: str | None) -> dict[str, RttClock]:
    """The RTT clock of each pathway in scope that declares one (its latest version's)."""
    found = {}
    for workflow_id in catalog.ids():
        clock = catalog.get(workflow_id).declarations.rtt
        if clock is not None and (pathway is None or workflow_id == pathway):
            found[workflow_id] = clock
    return found


def _specs(specs: dict[str, RttClock], params: dict[str, Any]) -> str:
    """The clocks as two CTEs: `specs` (one row per pathway) and `stops` (one per stop)."""
    rows, stops = [], []
    for i, (workflow_id, clock) in enumerate(sorted(specs.items())):
        params.update(
            {f"sp_{i}": workflow_id, f"ss_{i}": clock.start, f"sd_{i}": clock.standard_days}
            | {f"sr_{i}": clock.at_risk_weeks * 7}
        )
        rows.append(
            f"(CAST(:sp_{i} AS VARCHAR(100)), CAST(:ss_{i} AS VARCHAR(100)), "
            f"CAST(:sd_{i} AS INTEGER), CAST(:sr_{i} AS INTEGER))"
        )
        for j, name in enumerate(clock.stop_triggers):
            params[f"tt_{i}_{j}"] = name
            stops.append(f"(CAST(:sp_{i} AS VARCHAR(100)), CAST(:tt_{i}_{j} AS VARCHAR(100)), NULL)")
        for j, name in enumerate(clock.stop_states):
            params[f"ts_{i}_{j}"] = name
            stops.append(f"(CAST(:sp_{i} AS VARCHAR(100)), NULL, CAST(:ts_{i}_{j} AS VARCHAR(100)))")
    if not stops:  # a VALUES list cannot be empty
        stops.append("(CAST(NULL AS VARCHAR(100)), CAST(NULL AS VARCHAR(100)), CAST(NULL AS VARCHAR(100)))")
    return (
        f"specs (pathway_id, start_state, standard_days, at_risk_days) AS (VALUES {', '.join(rows)}),\n"
        f"stops (pathway_id, stop_trigger, stop_state) AS (VALUES {', '.join(stops)})"
    )


def rtt(store: Store, catalog: Catalog, *, as_of: datetime, pathway: str | None = None) -> RttReport:
    """Referral to treatment as of `as_of`, for `pathway` or every pathway with a clock."""
    specs = clocks(catalog, pathway)
    if not specs:
        return RttReport(as_of, 0, 0, None, {}, [], [], 0)
    dialect = store.backend
    params: dict[str, Any] = {"as_of": sql.bind_time(dialect, as_of)}
    targets = {clock.target_pct for clock in specs.values()}
    percentile = max(targets)
    params["rank_bp"] = round(percentile * 100)
    zone = store.zone
    waited = sql.calendar_days(dialect, "c.started", ":as_of", zone)
    clocks_sql = f"""
WITH {_specs(specs, params)},
started AS (
    SELECT n.id, p.identifier AS patient, n.pathway_id AS pathway, n.closed_at,
           s.standard_days, s.at_risk_days,
           MIN(CASE WHEN e.to_state = s.start_state THEN e.seq END) AS start_seq,
           MIN(CASE WHEN e.to_state = s.start_state THEN e.effective_at END) AS started
    FROM enrollments n JOIN patients p ON p.id = n.patient_id
    JOIN specs s ON s.pathway_id = n.pathway_id
    JOIN events e ON e.enrollment_id = n.id AND e.effective_at <= :as_of AND {sql.live("e")}
    GROUP BY n.id, p.identifier, n.pathway_id, n.closed_at, s.standard_days, s.at_risk_days
),
stopped AS (
    SELECT c.id, MIN(e.effective_at) AS stopped
    FROM started c
    JOIN events e ON e.enrollment_id = c.id AND e.seq > c.start_seq AND e.effective_at <= :as_of
     AND {sql.live("e")}
    JOIN stops t ON t.pathway_id = c.pathway
     AND (e."trigger" = t.stop_trigger OR e.to_state = t.stop_state)
    GROUP BY c.id
),
clocks AS (
    SELECT c.*, x.stopped FROM started c LEFT JOIN stopped x ON x.id = c.id WHERE c.started IS NOT NULL
),
waiting AS (
    SELECT c.*, {waited} AS days, {waited} / 7.0 AS weeks
    FROM clocks c WHERE c.stopped IS NULL AND (c.closed_at IS NULL OR c.closed_at > :as_of)
)
"""
    done_days = sql.calendar_days(dialect, "c.started", "c.stopped", zone)
    completed = (
        clocks_sql
        + f"""
, done AS (
    SELECT {sql.month(dialect, "c.started", zone)} AS month, {done_days} AS days, c.standard_days
    FROM clocks c WHERE c.stopped IS NOT NULL
),
ranked AS (
    SELECT month, days, standard_days, ROW_NUMBER() OVER (PARTITION BY month ORDER BY days) AS rn,
           COUNT(*) OVER (PARTITION BY month) AS n
    FROM done
)
SELECT month, COUNT(*) AS pathways,
       MAX(CASE WHEN rn = (n + 1) / 2 THEN days END) AS median_days,
       MAX(CASE WHEN rn = (:rank_bp * n + 9999) / 10000 THEN days END) AS percentile_days,
       SUM(CASE WHEN days <= standard_days THEN 1 ELSE 0 END) AS within
FROM ranked GROUP BY month ORDER BY month
"""
    )
    # Whole weeks waited, rounded down (PostgreSQL's CAST would round to nearest).
    week = "CAST(FLOOR(weeks) AS INTEGER)" if dialect == "postgresql" else "CAST(weeks AS INTEGER)"
    with store.read() as tx:
        conn = tx.conn

        def run(tail: str) -> Any:
            return conn.execute(text(clocks_sql + tail), params)

        buckets = run(
            f"SELECT {week} AS week, COUNT(*) AS patients FROM waiting GROUP BY {week} ORDER BY week"
        )
        buckets = buckets.all()
        risk = run(
            "SELECT patient, pathway, started, days, weeks, standard_days FROM waiting "
            "WHERE days >= at_risk_days ORDER BY weeks DESC, patient"
        ).all()
        per_pathway = run(
            "SELECT pathway, COUNT(*) AS incomplete, "
            "COALESCE(SUM(CASE WHEN days <= standard_days THEN 1 ELSE 0 END), 0) AS within "
            "FROM waiting GROUP BY pathway"
        ).all()
        still = {
            r.month: int(r.waiting)
            for r in run(
                f"SELECT {sql.month(dialect, 'started', zone)} AS month, COUNT(*) AS waiting "
                "FROM waiting GROUP BY 1"
            )
        }
        months = conn.execute(text(completed), params).all()
        closed = run(
            "SELECT COUNT(*) FROM clocks c WHERE c.stopped IS NULL AND c.closed_at IS NOT NULL "
            "AND c.closed_at <= :as_of"
        ).scalar_one()
    counts = {r.pathway: (int(r.incomplete), int(r.within)) for r in per_pathway}
    lines = tuple(
        PathwayRtt(workflow_id, clock, *counts.get(workflow_id, (0, 0)))
        for workflow_id, clock in sorted(specs.items())
    )
    incomplete = sum(line.incomplete for line in lines)
    within = sum(line.within_standard for line in lines)
    return RttReport(
        as_of=as_of,
        incomplete=incomplete,
        within_standard=within,
        within_pct=round(100 * within / incomplete, 1) if incomplete else None,
        by_weeks={int(b.week): int(b.patients) for b in buckets},
        at_risk=[
            {
                "patient": r.patient,
                "pathway": r.pathway,
                "weeks": round(float(r.weeks), 1),
                "days": int(r.days),
                "breached": int(r.days) > int(r.standard_days),
            }
            for r in risk
        ],
        completed_by_month=[
            {
                "month": m.month,
                "pathways": int(m.pathways),
                "median_weeks": round(int(m.median_days) / 7, 1),
                "percentile_weeks": round(int(m.percentile_days) / 7, 1),
                "p92_weeks": round(int(m.percentile_days) / 7, 1),  # deprecated: percentile_weeks
                "within_pct": round(100 * int(m.within) / int(m.pathways), 1),
                "still_waiting": still.get(m.month, 0),
            }
            for m in months
        ],
        closed_without_stop=int(closed),
        pathways=lines,
        percentile=percentile,
    )
