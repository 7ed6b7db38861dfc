"""pathway: a clinical pathway workflow engine.

Each patient's journey through a care pathway is a state machine with guard
conditions, persisted per patient. Start with `Clinic.open(url)`.

Every public name is imported on first use (`from pathway import Clinic`), so that
importing a part of the engine (`pathway.domain`, for a plug-in's guards) loads
neither the database layer nor anything else it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from pathway import _moved

__version__ = "0.2.0"

_moved.install()

#: public name -> (module, attribute)
_PUBLIC = {
    "Catalog": ("pathway.definitions.catalog", "Catalog"),
    "Clinic": ("pathway.clinic", "Clinic"),
    "Workflow": ("pathway.domain.definition", "Workflow"),
    "GuardSpec": ("pathway.domain.guards", "GuardSpec"),
    "guard": ("pathway.domain.guards", "guard"),
    "TriggerCheck": ("pathway.domain.machine", "TriggerCheck"),
    "Enrollment": ("pathway.domain.record", "Enrollment"),
    "Event": ("pathway.domain.record", "Event"),
    "Observation": ("pathway.domain.record", "Observation"),
    "PatientRecord": ("pathway.domain.record", "PatientRecord"),
    "Criteria": ("pathway.domain.verdicts", "Criteria"),
    "Failure": ("pathway.domain.verdicts", "Failure"),
    "Verdict": ("pathway.domain.verdicts", "Verdict"),
    "Migrated": ("pathway.service.results", "Migrated"),
    "Status": ("pathway.service.results", "Status"),
    "Summary": ("pathway.service.results", "Summary"),
    "Transitioned": ("pathway.service.results", "Transitioned"),
    "BottleneckReport": ("pathway.reports", "BottleneckReport"),
    "RttReport": ("pathway.reports", "RttReport"),
    "DeliveryReport": ("pathway.interop.delivery", "DeliveryReport"),
    "ImportReport": ("pathway.interop.referrals", "ImportReport"),
    "WorklistItem": ("pathway.service.worklist", "Item"),
}
_ERRORS = (
    "AlreadyEnrolled",
    "AmbiguousEnrollment",
    "ConcurrencyError",
    "DefinitionError",
    "EnrollmentClosed",
    "EnrollmentNotClosed",
    "GuardError",
    "GuardRefused",
    "InvalidInput",
    "InvalidTime",
    "InvalidTrigger",
    "NotAuthenticated",
    "NotFound",
    "PathwayError",
    "Refused",
    "RoleRefused",
    "StoreError",
    "VersionMismatch",
)
_PUBLIC.update({name: ("pathway.errors", name) for name in _ERRORS})

if TYPE_CHECKING:  # for type checkers and editors; at run time each is imported on first use
    from pathway.clinic import Clinic
    from pathway.definitions.catalog import Catalog
    from pathway.domain.definition import Workflow
    from pathway.domain.guards import GuardSpec, guard
    from pathway.domain.machine import TriggerCheck
    from pathway.domain.record import Enrollment, Event, Observation, PatientRecord
    from pathway.domain.verdicts import Criteria, Failure, Verdict
    from pathway.errors import (
        AlreadyEnrolled,
        AmbiguousEnrollment,
        ConcurrencyError,
        DefinitionError,
        EnrollmentClosed,
        EnrollmentNotClosed,
        GuardError,
        GuardRefused,
        InvalidInput,
        InvalidTime,
        InvalidTrigger,
        NotAuthenticated,
        NotFound,
        PathwayError,
        Refused,
        RoleRefused,
        StoreError,
        VersionMismatch,
    )
    from pathway.interop.delivery import DeliveryReport
    from pathway.interop.referrals import ImportReport
    from pathway.reports import BottleneckReport, RttReport
    from pathway.service.results import Migrated, Status, Summary, Transitioned
    from pathway.service.worklist import Item as WorklistItem


def __getattr__(name: str) -> object:
    found = _PUBLIC.get(name)
    if found is None:
        raise AttributeError(f"module 'pathway' has no attribute {name!r}")
    value = getattr(import_module(found[0]), found[1])
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


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
    "EnrollmentNotClosed",
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
    "NotAuthenticated",
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
    "VersionMismatch",
    "Workflow",
    "WorklistItem",
    "__version__",
    "guard",
]
