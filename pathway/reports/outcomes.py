"""Treatment outcomes, as each workflow file defines them (`outcome:`; `OutcomeMeasure`).

For each enrollment treated by `as_of` (its first `treatment` event), the measurement
judged is the one in the outcome window (calendar days after the treatment) closest to
the target day, compared with the latest baseline recorded on or before the treatment
day. CLINICAL.md clarification 9 sets the denominators: only enrollments whose window
has closed (treated at least `window_days[1]` days before `as_of`) are judged; the
report gives the success share of those with a measurement, the share of all of them
(no measurement counts as not a success) and how many have none. An observation
marked entered-in-error never counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from pathway.definitions.catalog import Catalog
from pathway.domain.declarations import OutcomeMeasure
from pathway.domain.timeutil import iso
from pathway.reports import sql
from pathway.store.repository import Store


@dataclass(frozen=True)
class Counts:
    """The sums one pathway's query returns (all pathways' are added up for the totals)."""

    treated: int = 0
    judged: int = 0  # window closed
    measured: int = 0  # window closed, with a measurement in it
    successes: int = 0
    change_sum: float = 0.0
    change_n: int = 0
    secondary_sum: float = 0.0
    secondary_n: int = 0
    secondary_gain: int = 0
    repeats: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values(), strict=True)))

    def to_dict(self) -> dict[str, Any]:
        def share(part: int, whole: int) -> float | None:
            return round(100 * part / whole, 1) if whole else None

        return {
            "treated": self.treated,
            "window_closed": self.judged,
            "with_follow_up": self.measured,
            "without_follow_up": self.judged - self.measured,
            "successes": self.successes,
            "success_pct": share(self.successes, self.measured),
            "success_pct_of_all": share(self.successes, self.judged),
            "mean_change": round(self.change_sum / self.change_n, 2) if self.change_n else None,
            "secondary_mean_change": round(self.secondary_sum / self.secondary_n, 2)
            if self.secondary_n
            else None,
            "secondary_meaningful_pct": share(self.secondary_gain, self.secondary_n),
            "repeats": self.repeats,
            "repeat_pct": share(self.repeats, self.treated),
        }


def measures(catalog: Catalog, pathway: str | None) -> dict[str, OutcomeMeasure]:
    """The outcome measure of each pathway in scope that declares one (its latest version's)."""
    found = {}
    for workflow_id in catalog.ids():
        measure = catalog.get(workflow_id).declarations.outcome
        if measure is not None and (pathway is None or workflow_id == pathway):
            found[workflow_id] = measure
    return found


def _describe(m: OutcomeMeasure) -> dict[str, Any]:
    low, high = m.window_days
    return {
        "label": m.label,
        "treatment": m.treatment,
        "measure": f"{m.measure.kind}.{m.measure.field}",
        "baseline": f"{m.baseline.kind}.{m.baseline.field}",
        "success_relief_pct": m.success_relief_pct,
        "window_days": [low, high],
        "target_day": m.target_day,
        "secondary": None
        if m.secondary is None
        else {
            "label": m.secondary.label,
            "field": m.secondary.field,
            "meaningful_change": m.secondary.meaningful_change,
        },
        "repeat": m.repeat,
    }


def _counts(store: Store, pathway: str, m: OutcomeMeasure, as_of: datetime) -> Counts:
    dialect = store.backend
    low, high = m.window_days
    zone = store.zone
    after = sql.calendar_days(dialect, "t.treated", "o.effective_at", zone)
    in_effect = "o.effective_at <= :as_of AND o.entered_in_error = :false"
    value = sql.json_number(dialect, "o.data", m.measure.field)
    base = sql.json_number(dialect, "o.data", m.baseline.field)
    second = sql.json_number(dialect, "o.data", m.secondary.field) if m.secondary else "NULL"
    second_base = sql.json_number(dialect, "o.data", m.secondary.baseline_field) if m.secondary else "NULL"
    params = {
        "as_of": sql.bind_time(dialect, as_of),
        "pathway": pathway,
        "treatment": m.treatment,
        "repeat": m.repeat,
        "measure_kind": m.measure.kind,
        "baseline_kind": m.baseline.kind,
        "low": low,
        "high": high,
        "target": m.target_day,
        "pct": m.success_relief_pct,
        "gain": m.secondary.meaningful_change if m.secondary else 0,
        "false": False,
    }
    query = f"""
WITH treated AS (
    SELECT e.enrollment_id, MIN(e.effective_at) AS treated
    FROM events e JOIN enrollments n ON n.id = e.enrollment_id
    WHERE e."trigger" = :treatment AND e.effective_at <= :as_of AND n.pathway_id = :pathway
    GROUP BY e.enrollment_id
),
baseline AS (
    SELECT t.enrollment_id, {base} AS score, {second_base} AS second,
           ROW_NUMBER() OVER (PARTITION BY t.enrollment_id ORDER BY o.effective_at DESC, o.id DESC) AS k
    FROM treated t JOIN observations o ON o.enrollment_id = t.enrollment_id
    WHERE o.kind = :baseline_kind AND {in_effect} AND {after} <= 0
),
measured AS (
    SELECT t.enrollment_id, {value} AS score, {second} AS second,
           ROW_NUMBER() OVER (
               PARTITION BY t.enrollment_id ORDER BY ABS({after} - :target), o.effective_at, o.id
           ) AS k
    FROM treated t JOIN observations o ON o.enrollment_id = t.enrollment_id
    WHERE o.kind = :measure_kind AND {in_effect} AND {after} >= :low AND {after} <= :high
),
judged AS (
    SELECT t.enrollment_id, b.score AS b_score, b.second AS b_second, s.score AS s_score, s.second AS s_second
    FROM treated t
    LEFT JOIN baseline b ON b.enrollment_id = t.enrollment_id AND b.k = 1
    LEFT JOIN measured s ON s.enrollment_id = t.enrollment_id AND s.k = 1
    WHERE {sql.calendar_days(dialect, "t.treated", ":as_of", zone)} >= :high
)
SELECT (SELECT COUNT(*) FROM treated) AS treated,
       COUNT(*) AS judged,
       SUM(CASE WHEN s_score IS NOT NULL THEN 1 ELSE 0 END) AS measured,
       SUM(CASE WHEN s_score IS NOT NULL AND b_score > 0
                 AND 100 * (b_score - s_score) >= :pct * b_score THEN 1 ELSE 0 END) AS successes,
       SUM(CASE WHEN s_score IS NOT NULL AND b_score IS NOT NULL THEN s_score - b_score END) AS change_sum,
       SUM(CASE WHEN s_score IS NOT NULL AND b_score IS NOT NULL THEN 1 ELSE 0 END) AS change_n,
       SUM(CASE WHEN s_second IS NOT NULL AND b_second IS NOT NULL
                 THEN s_second - b_second END) AS second_sum,
       SUM(CASE WHEN s_second IS NOT NULL AND b_second IS NOT NULL THEN 1 ELSE 0 END) AS second_n,
       SUM(CASE WHEN s_second IS NOT NULL AND b_second IS NOT NULL
                 AND b_second - s_second >= :gain THEN 1 ELSE 0 END) AS second_gain
FROM judged
"""
    repeats = """
SELECT COUNT(DISTINCT e.enrollment_id) FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e."trigger" = :repeat AND e.effective_at <= :as_of AND n.pathway_id = :pathway"""
    with store.read() as tx:
        row = tx.conn.execute(text(query), params).one()
        repeated = int(tx.conn.execute(text(repeats), params).scalar_one()) if m.repeat else 0
    return Counts(
        treated=int(row.treated or 0),
        judged=int(row.judged or 0),
        measured=int(row.measured or 0),
        successes=int(row.successes or 0),
        change_sum=float(row.change_sum or 0),
        change_n=int(row.change_n or 0),
        secondary_sum=float(row.second_sum or 0),
        secondary_n=int(row.second_n or 0),
        secondary_gain=int(row.second_gain or 0),
        repeats=repeated,
    )


def outcomes(
    store: Store, catalog: Catalog, *, as_of: datetime, pathway: str | None = None
) -> dict[str, Any]:
    """The outcome of each pathway in scope with an `outcome:` section, and the totals."""
    found = measures(catalog, pathway)
    lines = []
    total = Counts()
    for workflow_id, measure in sorted(found.items()):
        counts = _counts(store, workflow_id, measure, as_of)
        total = total + counts
        lines.append({"pathway": workflow_id, **_describe(measure), **counts.to_dict()})
    labels = {m.label for m in found.values()}
    return {
        "as_of": iso(as_of),
        "label": labels.pop() if len(labels) == 1 else None,
        **total.to_dict(),
        "pathways": lines,
    }
