"""Random records and triggers against a real SQLite file (hypothesis stateful testing).

Invariants after every step: the state is a defined state of the pathway; a
refused trigger changes nothing; replaying the event log gives the stored
state; sequence numbers run 1..n without gaps.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pathway import Clinic, PathwayError

PATHWAY = "cervical-neurotomy"
START = date(2026, 1, 5)
LEVELS = ["C3-4", "C4-5", "C5-6"]

observations = st.one_of(
    st.builds(
        lambda nrs, onset, axial: (
            "baseline",
            {
                "onset_date": (START - timedelta(days=onset)).isoformat(),
                "nrs": nrs,
                "ndi": 20,
                "axial_predominant": axial,
                "radiculopathy": "none",
                "red_flags": [],
            },
        ),
        st.integers(0, 10),
        st.integers(0, 400),
        st.booleans(),
    ),
    st.builds(
        lambda weeks, outcome: (
            "conservative_care",
            {"modality": "physiotherapy", "weeks": weeks, "outcome": outcome},
        ),
        st.integers(0, 12),
        st.sampled_from(["failed", "partial", "not_tolerated"]),
    ),
    st.builds(
        lambda side, levels, agent, pre, post, hours: (
            "block",
            {
                "side": side,
                "levels": levels,
                "agent": agent,
                "guidance": "fluoroscopy",
                "sedation": "none",
                "pre_nrs": pre,
                "post_nrs": post,
                "relief_hours": hours,
            },
        ),
        st.sampled_from(["left", "right"]),
        st.sets(st.sampled_from(LEVELS), min_size=1, max_size=2).map(sorted),
        st.sampled_from(["lidocaine", "bupivacaine"]),
        st.integers(5, 10),
        st.integers(0, 4),
        st.sampled_from([0.5, 1, 2, 6]),
    ),
    st.just(
        (
            "safety",
            {
                "anticoagulant": False,
                "anticoagulant_plan": False,
                "implanted_device": "none",
                "device_plan": False,
                "pregnant": False,
                "site_infection": False,
            },
        )
    ),
    st.builds(
        lambda levels: (
            "ablation",
            {"side": "right", "levels": levels, "technique": "thermal", "guidance": "fluoroscopy"},
        ),
        st.sets(st.sampled_from(LEVELS), min_size=1, max_size=3).map(sorted),
    ),
    st.builds(lambda nrs: ("follow_up", {"nrs": nrs, "ndi": 10, "pgic": 5}), st.integers(0, 10)),
    st.just(("contact_attempt", {"outcome": "no_response"})),
)


class PathwayJourney(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.clinic = Clinic.open(
            f"sqlite:///{Path(self.folder.name) / 'p.db'}", actor="hyp", role="physician"
        )
        self.day = START
        self.workflow = self.clinic.catalog.get(PATHWAY)

    @initialize()
    def enroll(self) -> None:
        self.clinic.enroll("P1", PATHWAY, at=self.day)

    @rule(days=st.integers(0, 40))
    def time_passes(self, days: int) -> None:
        self.day += timedelta(days=days)

    @rule(obs=observations)
    def record(self, obs: tuple[str, dict[str, object]]) -> None:
        kind, values = obs
        if not self.clinic.status("P1").open:
            return
        with contextlib.suppress(PathwayError):
            self.clinic.record("P1", kind, values, at=self.day)

    @rule(
        trigger=st.sampled_from(
            [
                "start_evaluation",
                "order_imaging",
                "schedule_blocks",
                "approve_ablation",
                "perform_ablation",
                "begin_follow_up",
                "repeat_ablation",
                "rediagnose",
                "discharge",
                "hold",
                "resume",
                "mark_lost",
                "mark_ineligible",
                "decline",
            ]
        ),
        reason=st.sampled_from([None, "clinical reason"]),
    )
    def fire(self, trigger: str, reason: str | None) -> None:
        before = self.clinic.status("P1")
        events_before = len(self.clinic.history("P1"))
        if not before.open:
            return
        try:
            result = self.clinic.advance("P1", trigger, at=self.day, reason=reason)
        except PathwayError:
            after = self.clinic.status("P1")
            assert (after.state, after.enrollment_version) == (
                before.state,
                before.enrollment_version,
            )
            assert len(self.clinic.history("P1")) == events_before
            return
        assert result.from_state == before.state
        assert self.clinic.status("P1").state == result.to_state

    @invariant()
    def state_is_defined_and_replay_matches(self) -> None:
        status = self.clinic.status("P1")
        assert status.state in self.workflow.states
        history = self.clinic.history("P1")
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        replayed = None
        for event in history:
            assert event.from_state == replayed
            replayed = event.to_state
        assert replayed == status.state
        assert status.open == (not self.workflow.is_terminal(status.state))

    def teardown(self) -> None:
        self.clinic.close()
        self.folder.cleanup()


PathwayJourney.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_journeys_keep_the_invariants = PathwayJourney.TestCase
