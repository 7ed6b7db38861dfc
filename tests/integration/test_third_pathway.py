"""A third pathway with names of its own (tests/pathways/knee-genicular.yaml): the reports,
the worklist, the funnel and FHIR work from what its file declares, and give the figures
computed here by hand from the journeys below. Nothing in the engine knows this pathway.

As of 2026-06-01 12:00 UTC (knee clock: 12 weeks = 84 days, 90% target, at risk from
10 weeks = 70 days; outcome: VAS relief >= 30% on the review visit of days 80-100 after
do_rfa closest to day 90, judged once do_rfa is 100+ days old):

patient  journey                                             clock (days)        outcome
K1       ... do_rfa 02-10, reviews day 30 and day 90         stopped 36 (Jan)    VAS 70->35 success
K2       consultation since 01-15, pain 2 months (blocked)   waiting 142         -
K3       waiting_list since 04-20                            waiting 42          -
K4       unsuitable 02-10                                    stopped 9 (Feb)     -
K5       xray, test block 03-20 gave 16.7% (blocked)         waiting 92          -
K6       do_rfa 2025-12-01, review day 94, finished 03-10    stopped 28 (Nov)    VAS 80->70 no success
K7       do_rfa 04-25, in review, 1-month follow-up due      stopped 54 (Mar)    not yet judged
K8       paused 05-10 (hold SLA 20 days)                     waiting 31          -
K9       do_rfa 2026-01-05, review day 31 only               stopped 35 (Dec)    judged, no review in window
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pathway import Catalog, Clinic, Criteria, InvalidInput, guard
from pathway.domain.guards import GuardRegistry, installed_guards
from pathway.domain.record import PatientRecord
from pathway.domain.verdicts import Verdict
from pathway.interop import fhir
from pathway.store.repository import Store

KNEE = "knee-genicular"
AS_OF = datetime(2026, 6, 1, 12, tzinfo=UTC)
FOLDER = Path(__file__).resolve().parents[1] / "pathways"


@guard("knee_pain_chronic", reads={"intake": ("pain_months",)}, params=("min_pain_months",))
def knee_pain_chronic(record: PatientRecord, params: Mapping[str, Any]) -> Verdict:
    c = Criteria("knee_pain_chronic")
    intake = record.latest("intake")
    if c.require(intake is not None, "intake", "no intake is recorded"):
        assert intake is not None
        need = params["min_pain_months"]
        c.require(
            intake["pain_months"] >= need,
            "pain_months",
            f"pain for {intake['pain_months']} months, below the {need}-month minimum",
        )
    return c.verdict()


@guard(
    "test_block_helped",
    reads={"test_injection": ("vas_before", "vas_after")},
    params=("min_test_relief_pct",),
)
def block_helped(record: PatientRecord, params: Mapping[str, Any]) -> Verdict:
    c = Criteria("test_block_helped")
    block = record.latest("test_injection")
    if c.require(block is not None, "test_injection", "no test injection is recorded"):
        assert block is not None
        relief = 100 * (block["vas_before"] - block["vas_after"]) / block["vas_before"]
        need = params["min_test_relief_pct"]
        c.require(relief >= need, "relief", f"relief {relief:.1f}% is below {need}%")
    return c.verdict()


@guard("procedure_note_today", reads={"procedure_note": ("knee",)})
def procedure_note_today(record: PatientRecord, params: Mapping[str, Any]) -> Verdict:
    c = Criteria("procedure_note_today")
    c.require(
        any(o.day == record.today for o in record.of_kind("procedure_note")),
        "procedure_note",
        "no procedure note for today",
    )
    return c.verdict()


def knee_catalog() -> Catalog:
    shipped = installed_guards()
    registry = GuardRegistry(
        [
            *(shipped[name] for name in shipped.names()),
            knee_pain_chronic,
            block_helped,
            procedure_note_today,
        ]
    )
    return Catalog.discover([FOLDER], guards=registry)


def treated(c: Clinic, p: str, days: str, intake: dict[str, int], injection: tuple[int, int]) -> None:
    """Referral to do_rfa on the days given as "referred seen offered injected listed rfa"."""
    referred, seen, offered, injected, listed, rfa = days.split()
    c.enroll(p, KNEE, at=referred, role="nurse")
    c.advance(p, "see_specialist", at=seen)
    c.record(p, "intake", intake, at=seen)
    c.advance(p, "offer_block", at=offered)
    c.record(p, "test_injection", {"vas_before": injection[0], "vas_after": injection[1]}, at=injected)
    c.advance(p, "list_for_rfa", at=listed)
    c.record(p, "procedure_note", {"knee": "right", "nerves": "superomedial,inferomedial"}, at=rfa)
    c.advance(p, "do_rfa", at=rfa)


@pytest.fixture
def knee(db_url: str) -> Iterator[Clinic]:
    with Clinic(Store.open(db_url), knee_catalog(), actor="dr.knee", role="surgeon") as c:
        k1 = "2026-01-05 2026-01-12 2026-01-20 2026-01-27 2026-01-28 2026-02-10"
        treated(c, "K1", k1, {"pain_months": 6, "vas": 70, "womac": 60}, (80, 20))
        c.advance("K1", "start_review", at="2026-02-24")
        c.record("K1", "review_visit", {"vas": 60, "womac": 55}, at="2026-03-12", role="nurse")
        c.record("K1", "review_visit", {"vas": 35, "womac": 40}, at="2026-05-11", role="nurse")

        c.enroll("K2", KNEE, at="2026-01-10", role="nurse")
        c.advance("K2", "see_specialist", at="2026-01-15")
        c.record("K2", "intake", {"pain_months": 2, "vas": 50, "womac": 30}, at="2026-01-15")

        c.enroll("K3", KNEE, at="2026-04-20", role="nurse")

        c.enroll("K4", KNEE, at="2026-02-01", role="nurse")
        c.advance("K4", "see_specialist", at="2026-02-03")
        c.advance("K4", "unsuitable", at="2026-02-10", reason="BMI over the limit")

        c.enroll("K5", KNEE, at="2026-03-01", role="nurse")
        c.advance("K5", "see_specialist", at="2026-03-02")
        c.record("K5", "intake", {"pain_months": 5, "vas": 60, "womac": 40}, at="2026-03-02")
        c.advance("K5", "request_xray", at="2026-03-03")
        c.advance("K5", "offer_block", at="2026-03-20")
        c.record("K5", "test_injection", {"vas_before": 60, "vas_after": 50}, at="2026-03-25")

        k6 = "2025-11-03 2025-11-05 2025-11-10 2025-11-12 2025-11-13 2025-12-01"
        treated(c, "K6", k6, {"pain_months": 24, "vas": 80, "womac": 70}, (80, 10))
        c.advance("K6", "start_review", at="2025-12-10")
        c.record("K6", "review_visit", {"vas": 70, "womac": 68}, at="2026-01-01")
        c.record("K6", "review_visit", {"vas": 70, "womac": 65}, at="2026-03-05")
        c.advance("K6", "finish", at="2026-03-10")

        k7 = "2026-03-02 2026-03-03 2026-03-04 2026-03-10 2026-03-11 2026-04-25"
        treated(c, "K7", k7, {"pain_months": 4, "vas": 60, "womac": 50}, (60, 20))
        c.advance("K7", "start_review", at="2026-05-02")

        c.enroll("K8", KNEE, at="2026-05-01", role="nurse")
        c.advance("K8", "see_specialist", at="2026-05-04")
        c.advance("K8", "pause", at="2026-05-10", reason="travelling")

        k9 = "2025-12-01 2025-12-02 2025-12-03 2025-12-05 2025-12-06 2026-01-05"
        treated(c, "K9", k9, {"pain_months": 9, "vas": 60, "womac": 40}, (60, 10))
        c.advance("K9", "start_review", at="2026-01-12")
        c.record("K9", "review_visit", {"vas": 20, "womac": 20}, at="2026-02-05")

        # A cervical patient in the same clinic: 150 days since referral (18-week standard).
        c.enroll("C1", "cervical-neurotomy", at="2026-01-02", role="coordinator")
        yield c


def test_referral_to_treatment_uses_the_knee_clock(knee: Clinic) -> None:
    report = knee.report_rtt(pathway=KNEE, as_of=AS_OF).to_dict()
    assert (report["standard_weeks"], report["target_pct"], report["at_risk_weeks"]) == (12, 90.0, 10)
    assert (report["incomplete"], report["within_standard"], report["within_pct"]) == (4, 2, 50.0)
    assert report["meets_target"] is False
    assert report["incomplete_by_weeks"] == {4: 1, 6: 1, 13: 1, 20: 1}
    assert [(r["patient"], r["days"], r["breached"]) for r in report["at_risk"]] == [
        ("K2", 142, True),
        ("K5", 92, True),
    ]
    months = {
        m["month"]: (m["pathways"], m["median_weeks"], m["within_pct"], m["still_waiting"])
        for m in report["completed_by_month"]
    }
    assert months == {
        "2025-11": (1, 4.0, 100.0, 0),
        "2025-12": (1, 5.0, 100.0, 0),
        "2026-01": (1, 5.1, 100.0, 1),
        "2026-02": (1, 1.3, 100.0, 0),
        "2026-03": (1, 7.7, 100.0, 1),
    }
    assert report["closed_without_stop"] == 0


def test_two_pathways_each_keep_their_own_standard(knee: Clinic) -> None:
    report = knee.report_rtt(as_of=AS_OF)
    lines = {p.pathway: p for p in report.pathways}
    assert (lines[KNEE].incomplete, lines[KNEE].within_standard) == (4, 2)
    assert (lines["cervical-neurotomy"].incomplete, lines["cervical-neurotomy"].within_standard) == (1, 0)
    assert (report.incomplete, report.within_standard) == (5, 2)
    assert report.standard_weeks is None  # 12 and 18 weeks: no one standard to print
    assert "within their pathway's standard" in report.summary()
    assert [r["patient"] for r in report.at_risk] == ["C1", "K2", "K5"]  # 21.4, 20.3, 13.1 weeks


def test_outcomes_follow_the_knee_measure(knee: Clinic) -> None:
    report = knee.report_outcomes(pathway=KNEE, as_of=AS_OF)
    assert report["label"] == "3-month"
    assert (report["treated"], report["window_closed"]) == (4, 3)  # K7's window is still open
    assert (report["with_follow_up"], report["without_follow_up"], report["successes"]) == (2, 1, 1)
    assert (report["success_pct"], report["success_pct_of_all"]) == (50.0, 33.3)
    assert report["mean_change"] == -22.5  # K1 70->35, K6 80->70
    assert report["secondary_mean_change"] == -12.5  # K1 60->40, K6 70->65
    assert report["secondary_meaningful_pct"] == 50.0  # K1 dropped 20 >= 12
    (line,) = report["pathways"]
    assert line["measure"] == "review_visit.vas" and line["secondary"]["label"] == "WOMAC"


def test_the_funnel_follows_the_knee_stages(knee: Clinic) -> None:
    funnel = knee.report_funnel(pathway=KNEE, as_of=AS_OF)
    stages = [(s["stage"], s["reached"], s["conversion_pct"], s["optional"]) for s in funnel["stages"]]
    assert stages == [
        ("waiting_list", 9, None, False),
        ("consultation", 8, 88.9, False),
        ("radiograph", 1, None, True),
        ("test_block", 5, 62.5, False),
        ("listed", 4, 80.0, False),
        ("aftercare", 4, 100.0, False),
        ("review", 4, 100.0, False),
        ("completed_care", 1, 25.0, False),
    ]
    assert {(x["state"], x["reason"], x["enrollments"]) for x in funnel["exits"]} == {
        ("not_suitable", "BMI over the limit", 1),
        ("completed_care", None, 1),
    }


def test_bottlenecks_name_the_knee_bottleneck(knee: Clinic) -> None:
    report = knee.report_bottlenecks(pathway=KNEE, as_of=AS_OF)
    lines = {line.state: line for line in report.states}
    consultation = lines["consultation"]
    assert (consultation.entries, consultation.exits, consultation.wip) == (8, 7, 1)
    assert (consultation.median_days, consultation.p90_days, consultation.max_days) == (5.0, 8.0, 8.0)
    assert (consultation.breaches_completed, consultation.breaches_open) == (0, 1)
    assert consultation.open_median_days == pytest.approx(137.5)
    waiting = lines["waiting_list"]
    assert (waiting.entries, waiting.exits, waiting.wip, waiting.median_days, waiting.p90_days) == (
        9,
        8,
        1,
        2.0,
        7.0,
    )
    assert waiting.breaches_open == 1
    assert [s.state for s in report.states if s.planned] == ["review", "aftercare"]  # listed last
    assert report.hold is not None and (report.hold.state, report.hold.wip, report.hold.breaches_open) == (
        "paused",
        1,
        1,
    )
    assert report.summary.startswith("Most waiting is in consultation: 37% of patient-days; median 5 days")


def test_the_worklist_follows_the_knee_schedule_and_routine(knee: Clinic) -> None:
    items = [i for i in knee.worklist(as_of=AS_OF) if i.pathway == KNEE]
    assert [(i.patient, i.kind) for i in items] == [
        ("K2", "rtt_breach"),
        ("K5", "rtt_breach"),
        ("K3", "new_referral"),  # referred on 2026-04-20, nothing done since: triage it
        ("K2", "over_sla"),
        ("K5", "over_sla"),
        ("K3", "over_sla"),
        ("K8", "over_sla"),
        ("K7", "follow_up_due"),
        ("K2", "blocked"),
        ("K5", "blocked"),
    ]
    actions = {(i.patient, i.kind): i.action for i in items}
    assert actions["K3", "new_referral"].startswith("new referral (")
    assert actions["K2", "rtt_breach"] == "treat or decide now: referral-to-treatment 20.3 weeks, past 12"
    assert actions["K7", "follow_up_due"] == "1-month follow-up overdue by 7 days (target 2026-05-25)"
    assert actions["K8", "over_sla"] == "hold past its SLA: resume or close it (22 days, SLA 20)"
    assert actions["K2", "blocked"] == "blocked: offer_block: pain for 2 months, below the 3-month minimum"
    # K1, K6 (closed) and K9 wait as planned in review: nothing for them.
    assert not {"K1", "K4", "K6", "K9"} & {i.patient for i in items}


def test_fhir_export_uses_the_knee_codes(knee: Clinic) -> None:
    bundle = fhir.export_bundle(knee, "K1").model_dump(mode="json", by_alias=True, exclude_none=True)
    resources = [e["resource"] for e in bundle["entry"]]
    (procedure,) = [r for r in resources if r["resourceType"] == "Procedure"]
    assert [c["code"] for c in procedure["code"]["coding"]] == ["64624", "procedure_note"]
    assert [b["text"] for b in procedure["bodySite"]] == [
        "right knee, superomedial genicular nerve",
        "right knee, inferomedial genicular nerve",
    ]
    scores = [
        (r["code"]["coding"][0]["code"], r["valueInteger"])
        for r in resources
        if r["resourceType"] == "Observation"
    ]
    assert scores == [
        ("vas-pain", 70),
        ("womac-pain", 60),
        ("vas-pain", 60),
        ("womac-pain", 55),
        ("vas-pain", 35),
        ("womac-pain", 40),
    ]


def test_a_pathway_without_a_journey_says_it_cannot_be_simulated(knee: Clinic) -> None:
    from pathway.service.simulate import simulate

    with pytest.raises(
        InvalidInput, match="knee-genicular cannot be simulated: its workflow file names no journey"
    ):
        simulate(knee, 5, pathway=KNEE, until=AS_OF.date())
