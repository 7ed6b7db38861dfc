"""`pathway demo`'s scripted patients come from installed packages: each entry point of the
`pathway.demos` group names a function `run(clinic, say) -> [patient identifiers]` that
makes its patients through the ordinary API, narrating with `say`. The shipped one is
`pathway_workflows.demo` (the worked examples of CLINICAL.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathway.service.engine import Service

DEMOS_ENTRY_POINT_GROUP = "pathway.demos"


def run_demos(clinic: Service, say: Callable[[str], None]) -> list[str]:
    """Run every installed demo script in name order; the patients they made."""
    from pathway.domain.plugins import entry_points_of

    patients: list[str] = []
    for ep in entry_points_of(DEMOS_ENTRY_POINT_GROUP):
        patients += ep.load()(clinic, say)
    return patients
