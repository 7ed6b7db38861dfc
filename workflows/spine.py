"""Guards of the spine pathways (cervical and lumbar medial branch RF neurotomy).

Pure functions of a read-only `PatientRecord` and the workflow's parameters; each
returns every failed criterion with the value seen and the threshold or fix
(CLINICAL.md, "Guards, precisely", and its clarifications). They live by stage:
`spine_evaluation`, `spine_blocks`, `spine_procedure` (with what they share in
`spine_common`); this module registers them (the `pathway.guards` entry point).
"""

from __future__ import annotations

from pathway.domain.guards import GuardSpec
from pathway_workflows.spine_blocks import block_session_limit, two_qualifying_blocks
from pathway_workflows.spine_evaluation import eligibility, imaging_reviewed
from pathway_workflows.spine_procedure import (
    contact_attempts_exhausted,
    follow_up_recorded,
    procedure_safety,
    recovery_period,
    repeat_criteria,
)

GUARDS: dict[str, GuardSpec] = {
    spec.name: spec
    for spec in (
        eligibility,
        imaging_reviewed,
        two_qualifying_blocks,
        block_session_limit,
        procedure_safety,
        recovery_period,
        repeat_criteria,
        follow_up_recorded,
        contact_attempts_exhausted,
    )
}
