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
from pathway.views import Status, Summary, Transitioned

__version__ = "0.1.0"

__all__ = [
    "AlreadyEnrolled",
    "AmbiguousEnrollment",
    "Catalog",
    "Clinic",
    "ConcurrencyError",
    "Criteria",
    "DefinitionError",
    "Enrollment",
    "EnrollmentClosed",
    "Event",
    "Failure",
    "GuardError",
    "GuardRefused",
    "GuardSpec",
    "InvalidInput",
    "InvalidTime",
    "InvalidTrigger",
    "NotFound",
    "Observation",
    "PathwayError",
    "PatientRecord",
    "Refused",
    "RoleRefused",
    "Status",
    "StoreError",
    "Summary",
    "Transitioned",
    "TriggerCheck",
    "Verdict",
    "Workflow",
    "__version__",
    "guard",
]
