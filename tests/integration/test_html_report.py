"""The HTML report: one self-contained page whose numbers are the reports' own, checked on
both databases, and rendered without errors by a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import Clinic
from pathway.reports.html import BOTTLENECK_COLUMNS, time_in_state, transitions_taken, wip_over_time
from pathway.service.simulate import simulate
from pathway_cli.main import cli
from tests.conftest import PG_URL, _pg_database

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
LOOKING_BACK = datetime(2026, 3, 15, tzinfo=UTC)
ODD_AS_OF = datetime(2026, 10, 19, 9, 15, 30, 250000, tzinfo=UTC)
SECTIONS = ("summary", "bottlenecks", "time-in-state", "wip", "rtt", "funnel", "diagram")
CHARTS = ("time-in-state", "wip", "rtt-months", "rtt-waiting", "funnel", "diagram")
SECRET_REASON = "cardiology letter awaited from Dr Quartermaine"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cohort(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    """One simulated cohort per backend, shared by this module's tests (they only read)."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('html') / 'pathway.db'}"])
    elif not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    else:
        urls = _pg_database()
    url = next(urls)
    try:
        with Clinic.open(url, actor="sim") as clinic:
            simulate(clinic, 120, seed=4, until=date(2026, 11, 1))
            clinic.enroll("OPEN1", "cervical-neurotomy", name="Orla Open", at="2026-10-01")
            clinic.advance("OPEN1", "hold", at="2026-10-05", reason=SECRET_REASON, role="coordinator")
            # Moves at an odd time of day, exactly one and two weeks before ODD_AS_OF.
            clinic.enroll("TIE1", "cervical-neurotomy", at="2026-10-05T09:15:30.25")
            clinic.advance("TIE1", "start_evaluation", at="2026-10-12T09:15:30.25", role="coordinator")
            yield clinic
    finally:
        for _ in urls:  # drops the PostgreSQL database
            pass


class Table(HTMLParser):
    """The bottleneck table's cells: {state: {column: text}}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._in_table = False
        self._state: str | None = None
        self._column: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._in_table = found.get("class") == "bottlenecks"
        elif self._in_table and tag == "tr" and found.get("data-state"):
            self._state = found["data-state"]
            self.rows[str(self._state)] = {}
        elif self._state and tag == "td":
            self._column = found.get("data-column")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table, self._state = False, None
        elif tag == "td":
            self._column = None

    def handle_data(self, data: str) -> None:
        if self._state and self._column:
            self.rows[self._state][self._column] = data


def test_the_page_is_self_contained_and_has_every_section(cohort: Clinic) -> None:
    page = cohort.report_html(as_of=AS_OF)
    assert page.startswith("<!DOCTYPE html>")
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
    for key in CHARTS:
        assert f'id="chart-{key}"' in page
    # Nothing is fetched: no external script, stylesheet, image or frame, no @import.
    external = re.compile(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.I
    )
    assert not external.search(page)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?https?:", page)
    assert "Plotly.newPlot" in page and len(page) > 3_000_000  # plotly.js is inline
    assert "Most waiting is in" in page and "within 18 weeks" in page


def test_the_bottleneck_table_shows_the_report_numbers(cohort: Clinic) -> None:
    for options in ({}, {"since": "2025-06-01", "until": "2026-06-01"}):
        page = cohort.report_html(as_of=AS_OF, **options)
        report = cohort.report_bottlenecks(as_of=AS_OF, **options)
        parser = Table()
        parser.feed(page)
        lines = [*report.states, *([report.hold] if report.hold else [])]
        assert list(parser.rows) == [line.state for line in lines]
        for line in lines:
            shown = parser.rows[line.state]
            for column, _ in BOTTLENECK_COLUMNS:
                value = getattr(line, column)
                if value is None:
                    assert shown[column] == "–", (line.state, column)
                    continue
                close = 0.5 if column == "patient_days" else 0.05
                assert abs(float(shown[column].replace(",", "")) - value) <= close, (line.state, column)


@pytest.mark.parametrize("as_of", [AS_OF, LOOKING_BACK])
def test_time_in_state_adds_up_to_the_bottleneck_exits_and_waiting(cohort: Clinic, as_of: datetime) -> None:
    for since, until in ((None, None), (datetime(2025, 9, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))):
        weeks = time_in_state(cohort.store, as_of=as_of, since=since, until=until)
        report = cohort.report_bottlenecks(as_of=as_of, since=since, until=until)
        for line in [*report.states, *([report.hold] if report.hold else [])]:
            assert sum(weeks[line.state].completed.values()) == line.exits, line.state
            assert sum(weeks[line.state].still_open.values()) == line.wip, line.state


@pytest.mark.parametrize("as_of", [AS_OF, ODD_AS_OF])
def test_work_in_progress_on_each_date_is_the_bottleneck_count_then(cohort: Clinic, as_of: datetime) -> None:
    series = wip_over_time(cohort.store, as_of=as_of)
    assert series.dates[-1] == as_of and len(series.dates) > 50
    for day in (*series.dates[-3:], series.dates[len(series.dates) // 2], series.dates[10]):
        k = series.dates.index(day)
        report = cohort.report_bottlenecks(as_of=day)
        for line in [*report.states, *([report.hold] if report.hold else [])]:
            assert series.states[line.state][k] == line.wip, (day, line.state)


def test_the_diagram_counts_the_enrollments_that_made_each_move(cohort: Clinic) -> None:
    expected: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    for summary in cohort.list():
        for event in cohort.history(summary.patient, pathway=summary.pathway):
            if event.from_state != event.to_state and event.effective_at <= AS_OF:
                expected[(event.from_state, event.to_state)].add(summary.patient)
    moves = transitions_taken(cohort.store, as_of=AS_OF)
    assert {(source, target): n for source, target, n in moves} == {k: len(v) for k, v in expected.items()}


def test_the_page_names_no_patient_and_quotes_no_reason(cohort: Clinic) -> None:
    page = cohort.report_html(as_of=AS_OF)
    for summary in cohort.list():
        assert summary.patient not in page
        if summary.name:
            assert summary.name not in page
    assert "Dr Quartermaine" not in page


def test_an_empty_database_gives_a_page_with_nothing_to_chart(db_url: str) -> None:
    with Clinic.open(db_url) as clinic:
        page = clinic.report_html(as_of=AS_OF)
    assert "No waiting recorded yet." in page and "No stays recorded yet." in page
    assert "Plotly.newPlot" not in page


def test_report_html_writes_the_file_and_says_where(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    with Clinic.open(db) as clinic:
        simulate(clinic, 30, seed=2, until=date(2026, 11, 1))
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["--db", db, "report", "html", "--output", str(out), "--as-of", "2026-11-01"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {out}"
    assert '<section id="bottlenecks">' in out.read_text(encoding="utf-8")
    assert not (tmp_path / "report.html.partial").exists()


def test_report_html_to_a_path_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    Clinic.open(db).close()
    missing = tmp_path / "no" / "such" / "dir" / "r.html"
    result = CliRunner().invoke(cli, ["--db", db, "report", "html", "--output", str(missing)])
    assert result.exit_code == 1
    assert f"cannot write {missing}: No such file or directory" in result.output
    assert "Traceback" not in result.output and not missing.parent.exists()
    unknown = CliRunner().invoke(
        cli, ["--db", db, "report", "html", "--output", str(tmp_path / "r.html"), "--pathway", "knee"]
    )
    assert unknown.exit_code == 4 and "unknown pathway 'knee'" in unknown.output


def test_demo_writes_the_html_report_beside_its_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "demo", "--cohort", "30"])
    assert result.exit_code == 0, result.output
    assert f"HTML report: {tmp_path / 'd.html'}" in result.output
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert '<section id="rtt">' in page and "DEMO-001" not in page


# --- a real browser ------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("PATHWAY_REQUIRE_CHROMIUM") == "1":
        pytest.fail("PATHWAY_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)")
    pytest.skip(
        "chromium is not installed (apt-get install chromium); PATHWAY_REQUIRE_CHROMIUM=1 makes this fail"
    )


@pytest.mark.parametrize("cohort", ["sqlite"], indirect=True)
def test_the_page_renders_in_a_headless_browser_without_errors(cohort: Clinic, tmp_path: Path) -> None:
    browser = chromium()
    page = tmp_path / "report.html"
    page.write_text(cohort.report_html(as_of=AS_OF), encoding="utf-8")
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            # No name resolves: a page that needed the network would fail to draw.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    errors = re.search(r'<html[^>]*\bdata-errors="([^"]*)"', dom)
    assert errors is not None, dom[:500]
    assert errors.group(1) == "", errors.group(1)
    # Each chart's div, up to the next chart, holds the SVG plotly.js drew.
    parts = re.split(r'id="chart-([a-z-]+)"', dom)
    drawn = {parts[i]: parts[i + 1].count('class="main-svg"') for i in range(1, len(parts), 2)}
    assert set(drawn) == set(CHARTS)
    assert all(count >= 1 for count in drawn.values()), drawn
