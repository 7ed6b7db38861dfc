"""The overlap rule (CLINICAL.md clarification 8) in its one home, at its boundaries."""

from datetime import UTC, datetime

from pathway.domain.episodes import Span, overlap

REGIONS = {"neck-a": "cervical", "neck-b": "cervical", "back": "lumbar"}


def region(pathway: str) -> str:
    return REGIONS.get(pathway, pathway)


def at(day: int) -> datetime:
    return datetime(2026, 3, day, 9, tzinfo=UTC)


def test_no_episodes_no_overlap():
    assert overlap([], "neck-a", at(1), region) is None


def test_an_open_episode_of_the_region_overlaps_whatever_its_pathway():
    found = overlap([Span("neck-b", at(1), None)], "neck-a", at(5), region)
    assert found is not None and found.open is not None
    assert (found.open.pathway, found.region, found.closed_at) == ("neck-b", "cervical", None)


def test_the_pathways_own_open_episode_is_named_before_another():
    spans = [Span("neck-b", at(1), None), Span("neck-a", at(2), None)]
    found = overlap(spans, "neck-a", at(5), region)
    assert found is not None and found.open == spans[1]


def test_another_region_never_overlaps():
    assert overlap([Span("back", at(1), None)], "neck-a", at(2), region) is None


def test_starting_at_the_close_is_allowed_a_moment_before_is_not():
    closed = [Span("neck-b", at(1), at(10)), Span("neck-a", at(1), at(8))]
    assert overlap(closed, "neck-a", at(10), region) is None
    found = overlap(closed, "neck-a", datetime(2026, 3, 10, 8, 59, 59, tzinfo=UTC), region)
    assert found is not None and found.open is None and found.closed_at == at(10)


def test_a_pathway_without_a_region_is_its_own():
    assert overlap([Span("knee", at(1), None)], "knee", at(2), region) is not None
    assert overlap([Span("knee", at(1), None)], "hip", at(2), region) is None
