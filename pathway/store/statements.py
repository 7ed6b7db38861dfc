"""The statements `Tx` runs, built once: executed with parameters, SQLAlchemy neither
rebuilds them nor recomputes their cache keys per call; the hot ones are also prepared
for the SQLite DBAPI path (`Fast`, see fastpath.py).
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, insert, select, update

from pathway.store.fastpath import Prepared
from pathway.store.rows import NewMessageRow, NewObservationRow, columns
from pathway.store.tables import enrollments, events, observations, outbox, patients

ENROLLMENT_COLUMNS = (
    enrollments,
    patients.c.identifier,
    patients.c.display_name,
    patients.c.identifier_system,
)


ENROLLMENT_SELECT = select(*ENROLLMENT_COLUMNS).join(patients, patients.c.id == enrollments.c.patient_id)
ENROLLMENT_ORDER = (enrollments.c.opened_at, enrollments.c.id)
FIND_PATIENT = select(
    patients.c.id, patients.c.identifier, patients.c.display_name, patients.c.identifier_system
).where(patients.c.identifier == bindparam("identifier"))
FIND_PATIENT_LOCKED = FIND_PATIENT.with_for_update()
ENROLLMENTS_OF_PATIENT = ENROLLMENT_SELECT.where(
    enrollments.c.patient_id == bindparam("patient_id")
).order_by(*ENROLLMENT_ORDER)
ENROLLMENTS_OF_IDENTIFIER = ENROLLMENT_SELECT.where(
    patients.c.identifier == bindparam("identifier")
).order_by(*ENROLLMENT_ORDER)
ENROLLMENT_BY_ID = ENROLLMENT_SELECT.where(enrollments.c.id == bindparam("enrollment_id"))
SAVE_STATE = (
    update(enrollments)
    .where(
        and_(
            enrollments.c.id == bindparam("b_id"),
            enrollments.c.version == bindparam("b_expected"),
        )
    )
    .values(
        state=bindparam("b_state"),
        held_from=bindparam("b_held_from"),
        entered_state_at=bindparam("b_entered_state_at"),
        closed_at=bindparam("b_closed_at"),
        last_event_at=bindparam("b_last_event_at"),
        last_seq=bindparam("b_last_seq"),
        version=bindparam("b_version"),
        chain_head=bindparam("b_chain_head"),
    )
)
TOUCH = (
    update(enrollments)
    .where(
        and_(
            enrollments.c.id == bindparam("b_id"),
            enrollments.c.version == bindparam("b_expected"),
        )
    )
    .values(version=bindparam("b_version"), chain_head=bindparam("b_chain_head"))
)
OBSERVATIONS_OF = (
    select(observations)
    .where(observations.c.enrollment_id.in_(bindparam("ids", expanding=True)))
    .order_by(observations.c.effective_at, observations.c.id)
)
ACTIVE_OBSERVATIONS_OF = OBSERVATIONS_OF.where(observations.c.entered_in_error.is_(False))
# The same, for every enrollment of one patient: no expanding IN list to re-render per call.
PATIENT_ENROLLMENT_IDS = (
    select(enrollments.c.id).where(enrollments.c.patient_id == bindparam("patient_id")).scalar_subquery()
)
OBSERVATIONS_OF_PATIENT = (
    select(observations)
    .where(observations.c.enrollment_id.in_(PATIENT_ENROLLMENT_IDS))
    .order_by(observations.c.effective_at, observations.c.id)
)
EVENTS_OF_PATIENT = (
    select(events)
    .where(events.c.enrollment_id.in_(PATIENT_ENROLLMENT_IDS))
    .order_by(events.c.effective_at, events.c.enrollment_id, events.c.seq)
)
EVENTS_OF = (
    select(events)
    .where(events.c.enrollment_id.in_(bindparam("ids", expanding=True)))
    .order_by(events.c.effective_at, events.c.enrollment_id, events.c.seq)
)
INSERT_EVENT = insert(events)
INSERT_OBSERVATION = insert(observations)
INSERT_OUTBOX = insert(outbox)

EVENT_COLUMNS = columns(events, with_id=False)
OBSERVATION_COLUMNS = NewObservationRow._fields
OUTBOX_COLUMNS = NewMessageRow._fields


class Fast:
    """The hot statements prepared for the SQLite DBAPI path (see fastpath.py)."""

    def __init__(self) -> None:
        self.enrollments_of_identifier = Prepared(ENROLLMENTS_OF_IDENTIFIER)
        self.patient_observations = Prepared(OBSERVATIONS_OF_PATIENT)
        self.patient_events = Prepared(EVENTS_OF_PATIENT)
        self.save_state = Prepared(SAVE_STATE)
        self.touch = Prepared(TOUCH)
        self.insert_event = Prepared(INSERT_EVENT, EVENT_COLUMNS)
        self.insert_observation = Prepared(INSERT_OBSERVATION, OBSERVATION_COLUMNS)
        self.insert_outbox = Prepared(INSERT_OUTBOX, OUTBOX_COLUMNS)


_fast: Fast | None = None


def fast_statements() -> Fast:
    global _fast
    if _fast is None:
        _fast = Fast()
    return _fast
