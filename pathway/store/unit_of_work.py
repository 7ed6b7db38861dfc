"""The unit of work: what a command may read and write inside its one transaction.

Three writers implement it: `repository.Tx` (each command against the database),
`staged.StagedTx` (a batch of commands on new patients, kept in memory and written
at the end) and, for its writes, `bulk.BulkTx` (referral import: rows built in one
loop). `tests/integration/test_unit_of_work.py` runs the same contract against each
of them on SQLite and PostgreSQL: what one writes, the others would have written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pathway.domain.effects import Position
from pathway.domain.record import Enrollment, Event, Observation


class PatientRow(NamedTuple):
    """A patient as `find_patient` gives it."""

    id: int
    identifier: str
    display_name: str | None
    identifier_system: str | None = None


class Writes(Protocol):
    """The writes of a unit of work. Outbox messages written are kept in `messages`, for
    the subscribers called once the transaction has committed."""

    messages: list[dict[str, Any]]

    def add_patient(
        self, identifier: str, display_name: str | None, at: datetime, system: str | None = None
    ) -> int: ...

    def set_display_name(self, patient_id: int, display_name: str) -> None: ...

    def add_enrollment(
        self,
        *,
        patient_id: int,
        pathway: str,
        version: int,
        profile: str,
        state: str,
        at: datetime,
        chain_head: str,
        referral: tuple[str | None, str] | None = None,
    ) -> int:
        """A new enrollment in `state`, its chain's head the hash of its enroll event (and the
        referral it came from: a system and a value)."""
        ...

    def add_event(self, event: Event) -> None: ...

    def add_outbox(
        self, *, type: str, enrollment_id: int | None, payload: Mapping[str, Any], at: datetime
    ) -> str: ...


class UnitOfWork(Writes, Protocol):
    """Everything `enroll`, `record`, `correct` and `advance` read and write."""

    def find_patient(self, identifier: str) -> PatientRow | None: ...

    def set_identifier_system(self, patient_id: int, system: str) -> None: ...

    def enrollments_of(self, patient_id: int) -> list[Enrollment]: ...

    def enrollments_of_identifier(self, identifier: str) -> list[Enrollment]: ...

    def enrollment(self, enrollment_id: int) -> Enrollment: ...

    def save_state(self, enrollment: Enrollment, position: Position, chain_head: str) -> None:
        """Move `enrollment` to `position`, refusing (ConcurrencyError) if it changed since read;
        its event is added first."""
        ...

    def touch(self, enrollment: Enrollment, chain_head: str) -> None:
        """Bump the enrollment's version (a record or correction) and move its chain's head,
        refusing a concurrent change."""
        ...

    def add_observation(
        self,
        *,
        enrollment_id: int,
        kind: str,
        data: Mapping[str, Any],
        effective_at: datetime,
        recorded_at: datetime,
        actor: str,
        role: str,
        chain_seq: int,
        hash: str,
    ) -> int: ...

    def patient_observations(self, patient_id: int) -> list[Observation]:
        """Every observation of every enrollment of the patient, corrections included."""
        ...

    def patient_events(self, patient_id: int) -> list[Event]: ...
