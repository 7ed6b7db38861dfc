"""The reports as a manager reads them: words for headers, units, consistent rounding, the
bottleneck named with its breach share, the open-month caveat, outcome numerators and
denominators; the HTML page has the outcomes too."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import Clinic
from pathway.service.simulate import simulate
from pathway_cli.main import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'c.db'}"
    with Clinic.open(url, actor="sim") as clinic:
        simulate(clinic, 250, seed=3, until=date(2026, 11, 1))
    return url


def report(db: str, *args: str) -> str:
    out = CliRunner().invoke(cli, ["--db", db, "report", *args, "--as-of", "2026-11-01"])
    assert out.exit_code == 0, out.output
    return out.output


def test_bottlenecks_speak_in_words_and_days(db: str) -> None:
    text = report(db, "bottlenecks")
    header = text.splitlines()[0]
    for words in (
        "SLA days",
        "entered",
        "left",
        "waiting now",
        "median days",
        "over SLA now",
        "patient-days",
    ):
        assert words in header
    assert "Days are calendar days" in text
    assert re.search(r"In \w+, \d+% of the [\d,]+ completed stays ran past the \d+-day SLA\.", text)
    body = text.splitlines()[2:]
    # Days to one decimal everywhere, patient-days whole.
    for line in body:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        assert re.fullmatch(r"[\d,]+\.\d|-", cells[5]), line
        assert re.fullmatch(r"[\d,]+", cells[-1]), line


def test_rtt_marks_months_still_open(db: str) -> None:
    text = report(db, "rtt")
    assert "Still waiting:" in text and "weeks of referral" in text
    assert "referred in" in text and "still waiting" in text
    open_months = [line for line in text.splitlines() if re.match(r"\d{4}-\d\d\*", line)]
    assert open_months, "recent months have patients still waiting"
    assert "* still open:" in text


def test_outcomes_give_numerators_and_denominators(db: str) -> None:
    text = report(db, "outcomes")
    assert re.search(
        r"successes: [\d,]+ of [\d,]+ with a follow-up in days 150-240 \(\d+%\); [\d,]+ of [\d,]+ treated",
        text,
    )
    assert "without a follow-up in the window:" in text
    assert re.search(r"repeated \(repeat_ablation\): [\d,]+ of [\d,]+", text)
    assert "lumbar-neurotomy: no treatments yet." in text


def test_the_html_page_has_the_outcomes(db: str, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    out = CliRunner().invoke(cli, ["--db", db, "report", "html", "-o", str(page), "--as-of", "2026-11-01"])
    assert out.exit_code == 0, out.output
    html = page.read_text()
    assert '<section id="outcomes">' in html and 'href="#outcomes"' in html
    assert re.search(r"<td>[\d,]+ of [\d,]+ \(\d+%\)</td>", html)
