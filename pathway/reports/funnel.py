"""The funnel: how many enrollments reached each stage of their pathway, the conversion
from one stage to the next, and how the closed ones ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from pathway.definitions.catalog import Catalog
from pathway.domain.timeutil import iso
from pathway.reports import sql
from pathway.store.repository import Store


def funnel(store: Store, catalog: Catalog, *, as_of: datetime, pathway: str | None = None) -> dict[str, Any]:
    """How many enrollments reached each stage, conversion from the stage before (a stage the
    workflow marks `optional` is left out of the chain), and exits by terminal state and reason."""
    dialect = store.backend
    pathway_filter = "AND n.pathway_id = :pathway" if pathway else ""
    params = {"as_of": sql.bind_time(dialect, as_of), "pathway": pathway}
    with store.read() as tx:
        reached = {
            r.state: int(r.enrollments)
            for r in tx.conn.execute(
                text(f"""
SELECT e.to_state AS state, COUNT(DISTINCT e.enrollment_id) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of AND {sql.live("e")} {pathway_filter}
GROUP BY e.to_state"""),
                params,
            )
        }
        exits = [
            {"state": r.state, "reason": r.reason, "enrollments": int(r.enrollments)}
            for r in tx.conn.execute(
                text(f"""
SELECT e.to_state AS state, e.reason, COUNT(*) AS enrollments
FROM events e JOIN enrollments n ON n.id = e.enrollment_id
WHERE e.effective_at <= :as_of AND n.closed_at IS NOT NULL AND e.seq = n.last_seq
  {pathway_filter}
GROUP BY e.to_state, e.reason ORDER BY COUNT(*) DESC, e.to_state"""),
                params,
            )
        ]
    workflows = [w for w in catalog.all() if pathway is None or w.id == pathway]
    terminal = {s.name for w in workflows for s in w.states.values() if s.terminal}
    order: list[str] = []
    for w in workflows:
        for s in w.states.values():
            if not s.terminal and not s.hold and s.name not in order:
                order.append(s.name)
    # The successful end: the terminal states a workflow marks `completed`.
    order += dict.fromkeys(s.name for w in workflows for s in w.states.values() if s.completed)
    optional = {s.name for w in workflows for s in w.states.values() if s.optional}
    stages = []
    previous: int | None = None
    for name in order:
        count = reached.get(name, 0)
        skipped = name in optional
        stages.append(
            {
                "stage": name,
                "reached": count,
                "optional": skipped,
                "conversion_pct": None
                if previous in (None, 0) or skipped
                else round(100 * count / previous, 1),
            }
        )
        if not skipped:
            previous = count
    return {
        "as_of": iso(as_of),
        "stages": stages,
        "exits": [x for x in exits if x["state"] in terminal],
        "closed_by_state": {name: reached.get(name, 0) for name in sorted(terminal)},
    }
