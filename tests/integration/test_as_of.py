"""Asked about a past date, `list`, `status`, `check` and the worklist answer as things stood
then: the same as a database that holds only what had happened by that date.

The oracle: a simulated cohort is deterministic given its seed and start, and a cohort
simulated only until T is the same cohort cut at T. So the full cohort asked "as of T" must
answer exactly as the cut one does.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from pathway import Catalog, Clinic, NotFound
from pathway.service.simulate import simulate

START, UNTIL = date(2024, 11, 1), date(2026, 11, 1)
PATIENTS, SEED = 150, 11
# Guards see the whole calendar day of "now" (CLINICAL.md), so each cut is asked about at the
# end of its day, and its cohort simulated until the next midnight.
CUTS = ["2025-03-01T23:59:59Z", "2025-09-17T23:59:59Z", "2026-03-01T23:59:59Z"]


@pytest.fixture(scope="module")
def cut_cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clinic]:
    folder: Path = tmp_path_factory.mktemp("cuts")
    cohorts = {}
    for cut in CUTS:
        clinic = Clinic.open(f"sqlite:///{folder / f'{cut[:10]}.db'}", actor="sim")
        simulate(
            clinic,
            PATIENTS,
            seed=SEED,
            start=START,
            until=date.fromisoformat(cut[:10]) + timedelta(days=1),
            referrals_until=UNTIL,  # the same arrivals as the full cohort's; later ones not yet
        )
        cohorts[cut] = clinic
    return cohorts


def summaries(clinic: Clinic, at: str) -> list[tuple[object, ...]]:
    return [
        (s.patient, s.pathway, s.version, s.state, s.since, s.open, s.days_in_state, s.overdue)
        for s in clinic.list(at=at)
    ]


def test_as_of_a_past_date_equals_the_cohort_cut_at_that_date(
    db_url: str, cut_cohorts: dict[str, Clinic]
) -> None:
    with Clinic.open(db_url, actor="sim") as full:
        simulate(full, PATIENTS, seed=SEED, start=START, until=UNTIL)
        for cut, then in cut_cohorts.items():
            assert summaries(full, cut) == summaries(then, cut), cut
            assert [s.open for s in full.list(at=cut, open_only=True)] == [True] * len(
                then.list(at=cut, open_only=True)
            )
            for state in ("evaluation", "follow_up", "on_hold"):
                assert summaries_of(full.list(at=cut, state=state)) == summaries_of(
                    then.list(at=cut, state=state)
                )
            checked = 0
            for summary in then.list(at=cut)[::5]:
                past, cut_status = full.status(summary.patient, at=cut), then.status(summary.patient, at=cut)
                ids = {"enrollment_id": 0, "enrollment_version": 0}  # numbered differently
                assert past.to_dict() | ids == cut_status.to_dict() | ids
                checked += 1
            assert checked >= 5
            assert [i.to_dict() for i in full.worklist(as_of=cut)] == [
                i.to_dict() for i in then.worklist(as_of=cut)
            ]
        # Nothing had happened to a patient enrolled later: a clear "not yet".
        late = next(
            s.patient
            for s in full.list()
            if s.patient not in {x.patient for x in cut_cohorts[CUTS[0]].list()}
        )
        with pytest.raises(NotFound, match="was not yet enrolled"):
            full.status(late, at=CUTS[0])


def summaries_of(rows: list[object]) -> list[tuple[str, str]]:
    return [(r.patient, r.state) for r in rows]  # type: ignore[attr-defined]


def test_as_of_follows_holds_and_migrations(clinic: Clinic, tmp_path: Path) -> None:
    clinic.enroll("H1", "cervical-neurotomy", at="2026-01-05", role="coordinator")
    clinic.advance("H1", "start_evaluation", at="2026-01-10", role="coordinator")
    clinic.advance("H1", "hold", at="2026-01-20", reason="anticoagulation plan", role="coordinator")
    clinic.advance("H1", "resume", at="2026-02-10", role="coordinator")
    clinic.advance("H1", "decline", at="2026-03-01", role="coordinator")
    expected = {
        "2026-01-05": ("referred", None, "2026-01-05", True),
        "2026-01-15": ("evaluation", None, "2026-01-10", True),
        "2026-02-01": ("on_hold", "evaluation", "2026-01-20", True),
        "2026-02-20": ("evaluation", None, "2026-02-10", True),
        "2026-03-05": ("declined", None, "2026-03-01", False),
    }
    for at, (state, held_from, since, is_open) in expected.items():
        status = clinic.status("H1", at=at)
        assert (status.state, status.held_from, status.since.date().isoformat(), status.open) == (
            state,
            held_from,
            since,
            is_open,
        ), at
    # While on hold as of then, the checks offered are the hold's: resume goes back to evaluation.
    (resume,) = clinic.check("H1", "resume", at="2026-02-01")
    assert resume.allowed and resume.dest == "evaluation"


def test_as_of_finds_the_episode_that_stood_then(clinic: Clinic) -> None:
    clinic.enroll("E1", "cervical-neurotomy", at="2025-01-01", role="coordinator")
    clinic.advance("E1", "decline", at="2025-02-01", role="coordinator")
    clinic.enroll("E1", "cervical-neurotomy", at="2025-06-01", role="coordinator")
    clinic.advance("E1", "start_evaluation", at="2025-06-05", role="coordinator")
    first = clinic.status("E1", at="2025-01-15")
    assert (first.state, first.open, first.opened_at.date().isoformat()) == ("referred", True, "2025-01-01")
    between = clinic.status("E1", at="2025-03-15")
    assert (between.state, between.open) == ("declined", False)
    second = clinic.status("E1", at="2025-06-02")
    assert (second.state, second.opened_at.date().isoformat()) == ("referred", "2025-06-01")
    assert [e.trigger for e in clinic.history("E1", at="2025-01-15")] == ["enroll"]
    assert "start_evaluation" in [c.trigger for c in clinic.check("E1", at="2025-01-15")]
    items = {(i.patient, i.kind) for i in clinic.worklist(as_of="2025-01-31")}
    assert ("E1", "over_sla") in items  # referred 30 days in its first episode
    with pytest.raises(NotFound, match="was not yet enrolled"):
        clinic.status("E1", at="2024-12-01")


def test_as_of_reads_each_event_with_the_version_it_happened_on(clinic: Clinic, tmp_path: Path) -> None:
    """Version 2 renames `evaluation` to `assessment`: replaying an enrollment that passed
    through `evaluation` on version 1 and was then migrated must still work."""
    shipped = Path(__file__).resolve().parents[2] / "workflows" / "cervical-neurotomy.yaml"
    local = tmp_path / "local"
    local.mkdir()
    text = shipped.read_text().replace("version: 1", "version: 2", 1)
    (local / "v2.yaml").write_text(text.replace("evaluation", "assessment"))
    clinic.enroll("M1", "cervical-neurotomy", at="2026-01-05", role="coordinator")
    clinic.advance("M1", "start_evaluation", at="2026-01-06", role="coordinator")
    clinic.advance("M1", "hold", at="2026-01-07", reason="records", role="coordinator")
    clinic.advance("M1", "resume", at="2026-01-08", role="coordinator")
    clinic.advance("M1", "decline", at="2026-01-09", role="coordinator")
    clinic.enroll("M2", "cervical-neurotomy", at="2026-01-05", role="coordinator")
    clinic.advance("M2", "start_evaluation", at="2026-01-06", role="coordinator")
    clinic.advance("M2", "order_imaging", at="2026-01-07", role="physician")
    with Clinic(clinic.store, Catalog.discover([local]), actor="t", role="physician") as v2:
        (moved,) = [m for m in v2.migrate("cervical-neurotomy", 2, at="2026-01-10") if m.migrated]
        assert moved.patient == "M2"
        v2.advance("M2", "hold", at="2026-01-12", reason="device plan", role="coordinator")
        then = v2.status("M2", at="2026-01-11")
        assert (then.state, then.version) == ("imaging", 2)
        before = v2.status("M2", at="2026-01-06T12:00:00Z")
        assert (before.state, before.version) == ("evaluation", 1)
        held = v2.status("M1", at="2026-01-07T12:00:00Z")
        assert (held.state, held.held_from, held.version) == ("on_hold", "evaluation", 1)
        assert {s.patient: s.state for s in v2.list(at="2026-01-11")} == {"M1": "declined", "M2": "imaging"}
