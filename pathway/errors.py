"""The one exception tree of `pathway`.

Every error the library raises on purpose is a `PathwayError`. The CLI maps the
classes to exit codes in one place (`EXIT_CODES` below): 1 error or invalid
input, 3 refused by a guard or a role, 4 not found, 5 concurrent change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathway.domain.verdicts import Verdict


class PathwayError(Exception):
    """Root of every error `pathway` raises on purpose."""

    exit_code = 1


class InvalidInput(PathwayError):
    """Raised when a value given by a user or caller is malformed or out of range.

    `problems` lists every problem found (field name first), so a caller can show
    them all at once. Nothing has been stored.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class DefinitionError(PathwayError):
    """Raised when a workflow file is invalid; `problems` holds every problem with its location."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class NotFound(PathwayError):
    """Raised when a patient, enrollment, observation or workflow does not exist."""

    exit_code = 4


class InvalidTrigger(PathwayError):
    """Raised when a trigger does not exist or cannot fire from the enrollment's current state.

    The message names the triggers that can fire from that state.
    """


class EnrollmentClosed(PathwayError):
    """Raised when something is recorded on or fired at an enrollment in a terminal state."""


class EnrollmentNotClosed(PathwayError):
    """Raised when a reopen is asked of a patient with no closed episode to reopen."""


class AlreadyEnrolled(PathwayError):
    """Raised when a patient already has an open enrollment in the pathway."""


class AmbiguousEnrollment(PathwayError):
    """Raised when a patient has several open enrollments and no pathway was named to choose."""


class InvalidTime(InvalidInput):
    """Raised when an effective time is malformed or earlier than the enrollment's previous event."""


class Refused(PathwayError):
    """Base of refusals: the request was understood but a rule does not allow it (exit 3)."""

    exit_code = 3


class RoleRefused(Refused):
    """Raised when the acting role may not fire a trigger or record a kind of observation."""

    def __init__(self, message: str, needed: Sequence[str]) -> None:
        super().__init__(message)
        self.needed = tuple(needed)


class GuardRefused(Refused):
    """Raised when a transition's guards (or a recording limit) do not pass.

    `verdicts` holds every guard's verdict, failed criteria included.
    """

    def __init__(self, message: str, trigger: str, verdicts: Sequence[Verdict]) -> None:
        super().__init__(message)
        self.trigger = trigger
        self.verdicts = tuple(verdicts)


class GuardError(PathwayError):
    """Raised when a guard's own code fails (raises, or returns something other than a
    Verdict): a fault in the guard, not a refusal, so nothing is decided on it."""


class ConcurrencyError(PathwayError):
    """Raised when another writer changed the enrollment first; nothing was written. Retry."""

    exit_code = 5


class NotAuthenticated(PathwayError):
    """Raised when a service request carries no credentials, or ones that are unknown,
    expired, revoked or of a disabled user (HTTP 401)."""


class VersionMismatch(ConcurrencyError):
    """Raised when a change names the enrollment version it was decided on (`expected_version`,
    HTTP `If-Match`) and the enrollment has changed since; nothing was written."""


class StoreError(PathwayError):
    """Raised when the database cannot be opened, is of an unknown schema, or refuses a change."""
