"""`pathway demo`: a handful of scripted patients showing the happy path and refusals.

Everything goes through the public `Clinic` API, so every guard is honoured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pathway.errors import Refused

if TYPE_CHECKING:
    from pathway.service.engine import Service as Clinic

PATHWAY = "cervical-neurotomy"

CLEAR_SAFETY = {
    "anticoagulant": False,
    "anticoagulant_plan": False,
    "implanted_device": "none",
    "device_plan": False,
    "pregnant": False,
    "site_infection": False,
}


def _block(side: str, levels: str, agent: str, pre: int, post: int, hours: float) -> dict[str, Any]:
    return {
        "side": side,
        "levels": levels,
        "agent": agent,
        "guidance": "fluoroscopy",
        "sedation": "none",
        "pre_nrs": pre,
        "post_nrs": post,
        "relief_hours": hours,
    }


def _evaluated(clinic: Clinic, patient: str, name: str, referred: str, onset: str) -> None:
    """Referral, evaluation, baseline and 8 weeks of failed physiotherapy, as in example 1."""
    clinic.enroll(patient, PATHWAY, name=name, at=referred, role="coordinator")
    clinic.advance(patient, "start_evaluation", at=_plus(referred, 7), role="coordinator")
    clinic.record(
        patient,
        "baseline",
        {
            "onset_date": onset,
            "nrs": 7,
            "ndi": 22,
            "axial_predominant": True,
            "radiculopathy": "none",
            "red_flags": [],
        },
        at=_plus(referred, 7),
        role="physician",
    )
    clinic.record(
        patient,
        "conservative_care",
        {"modality": "physiotherapy", "weeks": 8, "outcome": "failed"},
        at=_plus(referred, 7),
        role="coordinator",
    )


def _plus(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def run(clinic: Clinic, say: Callable[[str], None]) -> list[str]:
    """Build the demo patients; narrate with `say`; return their identifiers."""

    def attempt(patient: str, trigger: str, at: str, **kw: Any) -> None:
        try:
            result = clinic.advance(patient, trigger, at=at, role="physician", **kw)
            say(f"  {patient}: {trigger} -> {result.to_state}")
        except Refused as refusal:
            say(f"  {patient}: REFUSED {refusal}")

    # 1. The happy path of CLINICAL.md example 1, to a successful 6-month follow-up.
    say("DEMO-001: the happy path (CLINICAL.md example 1)")
    p = "DEMO-001"
    _evaluated(clinic, p, "Alex Example", "2026-01-05", "2025-05-01")
    attempt(p, "schedule_blocks", "2026-01-20")
    clinic.record(
        p,
        "block",
        _block("right", "C4-5,C5-6", "lidocaine", 7, 1, 2),
        at="2026-01-27",
        role="physician",
    )
    clinic.record(
        p,
        "block",
        _block("right", "C4-5,C5-6", "bupivacaine", 7, 0, 6),
        at="2026-02-17",
        role="physician",
    )
    attempt(p, "approve_ablation", "2026-02-18")
    clinic.record(p, "safety", CLEAR_SAFETY, at="2026-03-10", role="coordinator")
    clinic.record(
        p,
        "ablation",
        {"side": "right", "levels": "C4-5,C5-6", "technique": "thermal", "guidance": "fluoroscopy"},
        at="2026-03-10",
        role="physician",
    )
    attempt(p, "perform_ablation", "2026-03-10")
    attempt(p, "begin_follow_up", "2026-03-31")
    clinic.record(p, "follow_up", {"nrs": 3, "ndi": 10, "pgic": 6}, at="2026-09-10", role="coordinator")
    say("  6-month follow-up: NRS 7 -> 3 (57% relief): a success")

    # 2. Example 2: the second block gives 71.4% relief.
    say("DEMO-002: second block below 80% (CLINICAL.md example 2)")
    p = "DEMO-002"
    _evaluated(clinic, p, "Blake Example", "2026-02-02", "2025-06-15")
    attempt(p, "schedule_blocks", "2026-02-16")
    clinic.record(
        p,
        "block",
        _block("right", "C4-5,C5-6", "lidocaine", 7, 1, 2),
        at="2026-02-23",
        role="physician",
    )
    clinic.record(
        p,
        "block",
        _block("right", "C4-5,C5-6", "bupivacaine", 7, 2, 3),
        at="2026-03-16",
        role="physician",
    )
    attempt(p, "approve_ablation", "2026-03-17")

    # 3. Example 3: blocks on different sides.
    say("DEMO-003: blocks on different sides (CLINICAL.md example 3)")
    p = "DEMO-003"
    _evaluated(clinic, p, "Casey Example", "2026-03-02", "2025-08-01")
    attempt(p, "schedule_blocks", "2026-03-16")
    clinic.record(
        p,
        "block",
        _block("right", "C5-6", "lidocaine", 10, 1, 2),
        at="2026-03-23",
        role="physician",
    )
    clinic.record(
        p,
        "block",
        _block("left", "C5-6", "bupivacaine", 10, 1, 5),
        at="2026-04-13",
        role="physician",
    )
    attempt(p, "approve_ablation", "2026-04-14")

    # 4. Not yet eligible: pain too recent, too little conservative care.
    say("DEMO-004: not yet eligible for blocks")
    p = "DEMO-004"
    clinic.enroll(p, PATHWAY, name="Dana Example", at="2026-09-01", role="coordinator")
    clinic.advance(p, "start_evaluation", at="2026-09-08", role="coordinator")
    clinic.record(
        p,
        "baseline",
        {
            "onset_date": "2026-07-20",
            "nrs": 6,
            "ndi": 18,
            "axial_predominant": True,
            "radiculopathy": "untreated",
            "red_flags": [],
        },
        at="2026-09-08",
        role="physician",
    )
    clinic.record(
        p,
        "conservative_care",
        {"modality": "exercise", "weeks": 4, "outcome": "failed"},
        at="2026-09-08",
        role="coordinator",
    )
    attempt(p, "schedule_blocks", "2026-09-15")

    # 5. Anticoagulated without a plan: the procedure is refused and the patient held.
    say("DEMO-005: anticoagulant without a plan, put on hold")
    p = "DEMO-005"
    _evaluated(clinic, p, "Eli Example", "2026-04-06", "2025-09-01")
    attempt(p, "schedule_blocks", "2026-04-20")
    clinic.record(
        p,
        "block",
        _block("left", "C3-4", "lidocaine", 8, 1, 1.5),
        at="2026-04-27",
        role="physician",
    )
    clinic.record(
        p,
        "block",
        _block("left", "C3-4", "bupivacaine", 8, 1, 4),
        at="2026-05-18",
        role="physician",
    )
    attempt(p, "approve_ablation", "2026-05-19")
    clinic.record(p, "safety", {**CLEAR_SAFETY, "anticoagulant": True}, at="2026-06-01", role="coordinator")
    clinic.record(
        p,
        "ablation",
        {"side": "left", "levels": "C3-4", "technique": "thermal", "guidance": "fluoroscopy"},
        at="2026-06-01",
        role="physician",
    )
    attempt(p, "perform_ablation", "2026-06-01")
    attempt(p, "hold", "2026-06-01", reason="anticoagulation plan needed from cardiology")

    # 6. A fresh referral nobody has picked up.
    say("DEMO-006: a referral waiting for evaluation")
    clinic.enroll("DEMO-006", PATHWAY, name="Flynn Example", at="2026-10-19", role="coordinator")
    say("  DEMO-006: referred on 2026-10-19")
    return [f"DEMO-00{i}" for i in range(1, 7)]
