"""The spine pathways' evaluation guards: eligibility for diagnostic blocks, and imaging."""

from __future__ import annotations

from datetime import date

from pathway.domain.guards import guard
from pathway.domain.record import PatientRecord
from pathway.domain.verdicts import Criteria, Verdict
from pathway_workflows.spine_common import Params


@guard(
    "eligibility",
    reads={
        "baseline": ("onset_date", "nrs", "axial_predominant", "radiculopathy", "red_flags"),
        "conservative_care": ("weeks", "outcome"),
        "imaging": ("non_facet_pathology",),
    },
    params=("min_pain_days", "min_conservative_weeks", "min_baseline_nrs"),
)
def eligibility(record: PatientRecord, params: Params) -> Verdict:
    """Eligible for diagnostic blocks: pain duration, failed conservative care, axial pain..."""
    c = Criteria("eligibility")
    baseline = record.latest("baseline")
    if c.require(baseline is not None, "baseline", "no baseline is recorded: record the baseline evaluation"):
        assert baseline is not None
        onset: date = baseline["onset_date"]
        days = (record.today - onset).days
        need = params["min_pain_days"]
        c.require(
            days >= need,
            "pain_duration",
            f"pain duration {days} days (since {onset.isoformat()}) is below the {need}-day minimum",
        )
        c.require(
            baseline["axial_predominant"] is True,
            "axial_predominant",
            "axial_predominant is false: the pain must be predominantly axial",
        )
        nrs, min_nrs = baseline["nrs"], params["min_baseline_nrs"]
        c.require(nrs >= min_nrs, "baseline_nrs", f"baseline NRS {nrs} is below the minimum of {min_nrs}")
        c.require(
            baseline["radiculopathy"] != "untreated",
            "radiculopathy",
            "untreated radiculopathy excludes neurotomy: treat it first",
        )
        flags = list(baseline["red_flags"])
        c.require(not flags, "red_flags", f"red flags present: {', '.join(flags)}")
    weeks = sum(
        o["weeks"] for o in record.of_kind("conservative_care") if o["outcome"] in ("failed", "not_tolerated")
    )
    need_weeks = params["min_conservative_weeks"]
    c.require(
        weeks >= need_weeks,
        "conservative_care",
        f"failed or not tolerated conservative care totals {weeks} weeks, below the "
        f"{need_weeks}-week minimum",
    )
    _no_non_facet_pathology(record, c)
    return c.verdict()


def _no_non_facet_pathology(record: PatientRecord, c: Criteria) -> None:
    for o in record.of_kind("imaging"):
        c.require(
            not o["non_facet_pathology"],
            "non_facet_pathology",
            f"imaging on {o.day.isoformat()} ({o['modality']}) shows non-facet pathology",
        )


@guard("imaging_reviewed", reads={"imaging": ("modality", "non_facet_pathology")})
def imaging_reviewed(record: PatientRecord, params: Params) -> Verdict:
    """Imaging is recorded and shows no non-facet pathology."""
    c = Criteria("imaging_reviewed")
    c.require(
        bool(record.of_kind("imaging")),
        "imaging_recorded",
        "no imaging is recorded: record the imaging review",
    )
    _no_non_facet_pathology(record, c)
    return c.verdict()
