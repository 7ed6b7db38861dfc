"""What the spine pathways' guards share: how percentages and hours are shown, relief, and
which ablations and blocks count (CLINICAL.md clarifications 2 and 3).

Pure functions of a read-only `PatientRecord` and the workflow's parameters; nothing
here is region-specific: the levels come from the observations, the thresholds from the
workflow file.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from pathway.domain.record import Event, Observation, PatientRecord

Params = Mapping[str, Any]

#: The trigger whose success is an ablation: only a performed one counts (clarification 2).
PERFORMED = "perform_ablation"


def pct(value: Fraction | float) -> str:
    """A percentage to one decimal, truncated (79.99 shows 79.9, never 80), no trailing .0."""
    tenths = int(Fraction(value) * 10)  # int() truncates toward zero
    whole, frac = divmod(abs(tenths), 10)
    sign = "-" if tenths < 0 else ""
    return f"{sign}{whole}" if frac == 0 else f"{sign}{whole}.{frac}"


def relief(pre: int, post: int) -> Fraction:
    """Exact relief percentage: 100 * (pre - post) / pre."""
    return Fraction(100 * (pre - post), pre)


def hours(value: float) -> str:
    return f"{value:g} h"


def ablations(record: PatientRecord, *, region: bool = False) -> tuple[Event, ...]:
    """The ablations performed (a refused attempt's ablation record counts for nothing)."""
    return record.events_with_trigger(PERFORMED, region=region)


def current_blocks(record: PatientRecord) -> tuple[Observation, ...]:
    """This diagnostic round's blocks: those on a later day than the patient's last performed
    ablation (clarification 3; after `rediagnose`, new blocks are needed)."""
    done = ablations(record, region=True)
    after = done[-1].day if done else None
    return tuple(b for b in record.of_kind("block") if after is None or b.day > after)


def last_two_blocks(record: PatientRecord) -> tuple[Observation, ...]:
    return current_blocks(record)[-2:]
