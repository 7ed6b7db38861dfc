"""FHIR R4B vocabulary the export and import use: the project's URLs, the status value sets
`check_bundle` verifies, and how a pathway state maps to an EpisodeOfCare status."""

from __future__ import annotations

from collections.abc import Mapping

from pathway.domain.definition import Workflow
from pathway.errors import PathwayError

BASE = "https://pathway.invalid/fhir"
PATIENT_SYSTEM = f"{BASE}/patient-id"
ENROLLMENT_SYSTEM = f"{BASE}/enrollment-id"
OBSERVATION_SYSTEM = f"{BASE}/observation-id"
PLAN_DEFINITION_BASE = f"{BASE}/PlanDefinition"
PATHWAY_CODES = f"{BASE}/CodeSystem/pathway"
LEVEL_CODES = f"{BASE}/CodeSystem/spinal-level"
LATERALITY_EXTENSION = f"{BASE}/StructureDefinition/laterality"
EPISODE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


# ServiceRequest.intent codes that make it an order (a referral), not a proposal or plan.
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")

# Value sets of the statuses `check_bundle` verifies (FHIR R4B required bindings).
EPISODE_STATUSES = frozenset(
    {"planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error"}
)
TASK_STATUSES = frozenset(
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    }
)
PROCEDURE_STATUSES = frozenset(
    {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    }
)
OBSERVATION_STATUSES = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
)
CAREPLAN_STATUSES = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
STATUS_SETS: Mapping[str, frozenset[str]] = {
    "EpisodeOfCare": EPISODE_STATUSES,
    "Task": TASK_STATUSES,
    "Procedure": PROCEDURE_STATUSES,
    "Observation": OBSERVATION_STATUSES,
    "CarePlan": CAREPLAN_STATUSES,
}

EPISODE_STATUS_DOC = """\
pathway state                                   -> EpisodeOfCare.status
the initial state                               -> waitlist   (referral received, care not started)
a state marked hold                             -> onhold
other non-terminal states                       -> active
a terminal state marked completed               -> finished   (care completed as planned)
other terminal states                           -> cancelled  (ended outside the planned workflow)
"""

CAREPLAN_STATUS = {
    "waitlist": "active",
    "active": "active",
    "onhold": "on-hold",
    "finished": "completed",
    "cancelled": "revoked",
}

LATERALITY: Mapping[str, tuple[str, str]] = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "bilateral": ("51440002", "Right and left"),
}


class FhirError(PathwayError):
    """Raised when an export would produce a bundle that `check_bundle` rejects (a bug)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid FHIR bundle: " + "; ".join(problems))
        self.problems = tuple(problems)


# --- export ------------------------------------------------------------------------------


def episode_status(workflow: Workflow, state: str) -> str:
    """EpisodeOfCare.status for a pathway state (see `EPISODE_STATUS_DOC`)."""
    spec = workflow.states.get(state)
    if spec is None:
        return "active"
    if spec.terminal:
        return "finished" if spec.completed else "cancelled"
    if spec.hold:
        return "onhold"
    if spec.initial or state == workflow.initial:
        return "waitlist"
    return "active"


def system_url(system: str) -> str:
    """A code system as exported: a workflow file's `pathway` is the project's own."""
    return PATHWAY_CODES if system == "pathway" else system
