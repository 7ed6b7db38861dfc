"""pathway: a clinical pathway workflow engine.

Each patient's journey through a care pathway is a state machine with guard
conditions, persisted per patient. Start with `Clinic.open(url)`.
"""

from pathway.catalog import Catalog
from pathway.clinic import Clinic
from pathway.definition import Workflow
from pathway.errors import (
    AlreadyEnrolled,
    AmbiguousEnrollment,
    ConcurrencyError,
    DefinitionError,
    EnrollmentClosed,
    GuardError,
    GuardRefused,
    InvalidInput,
    InvalidTime,
    InvalidTrigger,
    NotFound,
    PathwayError,
    Refused,
    RoleRefused,
    StoreError,
)
from pathway.guards import GuardSpec, guard
from pathway.machine import TriggerCheck
from pathway.record import Enrollment, Event, Observation, PatientRecord
from pathway.verdicts import Criteria, Failure, Verdict
from pathway.views import Migrated, Status, Summary, Transitioned

__version__ = "0.1.0"

# Results of the heavier commands, imported on first use (`from pathway import ImportReport`)
# so that `import pathway` stays quick for the command line.
_LAZY = {
    "BottleneckReport": ("pathway.reports", "BottleneckReport"),
    "DeliveryReport": ("pathway.outbox", "DeliveryReport"),
    "ImportReport": ("pathway.referrals", "ImportReport"),
    "RttReport": ("pathway.reports", "RttReport"),
    "WorklistItem": ("pathway.worklist", "Item"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'pathway' has no attribute {name!r}")


__all__ = [
    "AlreadyEnrolled",
    "AmbiguousEnrollment",
    "BottleneckReport",
    "Catalog",
    "Clinic",
    "ConcurrencyError",
    "Criteria",
    "DefinitionError",
    "DeliveryReport",
    "Enrollment",
    "EnrollmentClosed",
    "Event",
    "Failure",
    "GuardError",
    "GuardRefused",
    "GuardSpec",
    "ImportReport",
    "InvalidInput",
    "InvalidTime",
    "InvalidTrigger",
    "Migrated",
    "NotFound",
    "Observation",
    "PathwayError",
    "PatientRecord",
    "Refused",
    "RoleRefused",
    "RttReport",
    "Status",
    "StoreError",
    "Summary",
    "Transitioned",
    "TriggerCheck",
    "Verdict",
    "Workflow",
    "WorklistItem",
    "__version__",
    "guard",
]
