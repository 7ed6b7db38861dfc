"""The reports count calendar days, as the guards do (CLINICAL.md: "Dates are compared as
calendar dates"), so a boundary day counts the same whatever the time of day."""

from __future__ import annotations

from datetime import datetime, timedelta

from pathway import Clinic

from .test_worklist import BASELINE, BLOCK, SAFE


def ablate(clinic: Clinic, patient: str, *, referred: str, ablated: str) -> None:
    """Walk `patient` from referral to an ablation at `ablated` (an ISO date or datetime)."""
    clinic.enroll(patient, "cervical-neurotomy", at=referred)
    clinic.advance(patient, "start_evaluation", at=referred)
    clinic.record(patient, "baseline", {**BASELINE, "onset_date": "2024-01-01"}, at=referred)
    clinic.record(
        patient, "conservative_care", {"modality": "exercise", "weeks": 8, "outcome": "failed"}, at=referred
    )
    clinic.advance(patient, "schedule_blocks", at=referred)
    day = datetime.fromisoformat(referred).date()
    clinic.record(patient, "block", BLOCK, at=day + timedelta(days=30))
    clinic.record(
        patient, "block", {**BLOCK, "agent": "bupivacaine", "relief_hours": 5}, at=day + timedelta(days=50)
    )
    clinic.advance(patient, "approve_ablation", at=day + timedelta(days=51))
    clinic.record(patient, "safety", SAFE, at=ablated)
    clinic.record(
        patient,
        "ablation",
        {"side": "right", "levels": ["C4-5"], "technique": "thermal", "guidance": "fluoroscopy"},
        at=ablated,
    )
    clinic.advance(patient, "perform_ablation", at=ablated)


def test_rtt_day_126_is_within_18_weeks_whatever_the_time_of_day(clinic: Clinic) -> None:
    # Referred in the morning of 2025-01-01: day 126 is 2025-05-07, day 127 is 2025-05-08.
    clinic.enroll("WAIT", "cervical-neurotomy", at="2025-01-01T08:00:00Z")
    late_on_day_126 = "2025-05-07T23:00:00Z"
    report = clinic.report_rtt(as_of=late_on_day_126)
    assert (report.incomplete, report.within_standard) == (1, 1)
    assert [r["weeks"] for r in report.at_risk] == [18.0]
    kinds = {i.kind for i in clinic.worklist(as_of=late_on_day_126)}
    assert "rtt_at_risk" in kinds and "rtt_breach" not in kinds

    early_on_day_127 = "2025-05-08T00:30:00Z"
    report = clinic.report_rtt(as_of=early_on_day_127)
    assert (report.incomplete, report.within_standard) == (1, 0)
    breach = [i for i in clinic.worklist(as_of=early_on_day_127) if i.kind == "rtt_breach"]
    assert len(breach) == 1 and "18.1 weeks" in breach[0].action


def test_rtt_treatment_on_day_126_is_within_and_on_day_127_is_not(clinic: Clinic) -> None:
    # Referred at 14:00 on 2024-09-02 (day 126 is 2025-01-06), treated at 09:00 on day 127:
    # less than 126 x 24 hours later, but on the 127th day.
    ablate(clinic, "LATE", referred="2024-09-02T14:00:00Z", ablated="2025-01-07T09:00:00Z")
    # Referred at 08:00 on 2024-09-03, treated at 20:00 on day 126: more than 126 x 24 hours.
    ablate(clinic, "INTIME", referred="2024-09-03T08:00:00Z", ablated="2025-01-07T20:00:00Z")
    months = {m["month"]: m for m in clinic.report_rtt(as_of="2025-02-01").completed_by_month}
    assert months["2024-09"]["pathways"] == 2
    assert months["2024-09"]["within_pct"] == 50.0
    assert sorted([months["2024-09"]["median_weeks"], months["2024-09"]["p92_weeks"]]) == [18.0, 18.1]


def test_outcomes_count_the_six_month_window_in_calendar_days(clinic: Clinic) -> None:
    # Each ablated at 10:00 on 2025-02-01; follow-ups at 08:00, before the time of day of the
    # ablation. Day 150 is 2025-07-01, day 240 is 2025-09-29.
    follow = {"ndi": 5, "pgic": 7}
    for patient, day in (
        ("D149", "2025-06-30"),
        ("D150", "2025-07-01"),
        ("D240", "2025-09-29"),
        ("D241", "2025-09-30"),
    ):
        ablate(clinic, patient, referred="2024-11-01", ablated="2025-02-01T10:00:00Z")
        clinic.record(patient, "follow_up", {**follow, "nrs": 2}, at=f"{day}T08:00:00Z")
    # A baseline recorded on the day of the ablation, after it, is the one the outcome uses:
    # NRS 3 -> 2 is not a 50% relief (from the earlier baseline, 7 -> 2, it would be).
    ablate(clinic, "SAMEDAY", referred="2024-11-01", ablated="2025-02-01T10:00:00Z")
    clinic.record(
        "SAMEDAY", "baseline", {**BASELINE, "onset_date": "2024-01-01", "nrs": 3}, at="2025-02-01T18:00:00Z"
    )
    clinic.record("SAMEDAY", "follow_up", {**follow, "nrs": 2}, at="2025-08-01")

    # Clarification 9: an ablation counts once it is at least 240 days before the as-of date.
    # On day 239 nobody counts yet; on day 240 everybody does.
    assert clinic.report_outcomes(as_of="2025-09-28T23:00:00Z")["window_closed"] == 0
    report = clinic.report_outcomes(as_of="2025-09-29T23:00:00Z")
    assert report["treated"] == 5 and report["window_closed"] == 5
    # D150 and D240 are in the window and successes; D149 and D241 are not in it; SAMEDAY is
    # in it but not a success.
    assert report["with_follow_up"] == 3 and report["without_follow_up"] == 2
    assert report["successes"] == 2
