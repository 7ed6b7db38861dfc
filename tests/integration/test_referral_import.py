"""Bulk referral import: validated first, all or nothing, nobody enrolled twice."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pathway import Clinic
from pathway_cli.main import cli

GOOD = (
    "patient,referred_at,pathway,profile,name\n"
    "R1,2026-01-05,cervical-neurotomy,,Ann Example\n"
    "R2,2026-01-06T09:30+01:00,lumbar-neurotomy,consensus,\n"
    "R3,2026-01-07,,,\n"
)


def write(tmp_path: Path, text: str, name: str = "referrals.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_file_enrolls_everyone_with_events_and_outbox(clinic: Clinic, tmp_path: Path) -> None:
    report = clinic.import_referrals(write(tmp_path, GOOD), pathway="cervical-neurotomy")
    assert (report.rows, report.imported, report.problems) == (3, 3, [])
    r2 = clinic.status("R2")
    assert (r2.pathway, r2.profile, r2.state) == ("lumbar-neurotomy", "consensus", "referred")
    assert r2.since.isoformat() == "2026-01-06T08:30:00+00:00"
    assert clinic.status("R1").name == "Ann Example"
    assert clinic.status("R3").pathway == "cervical-neurotomy"
    assert [e.trigger for e in clinic.history("R1")] == ["enroll"]
    assert len(clinic.outbox()) == 3


def test_running_the_same_file_again_enrolls_nobody_twice(clinic: Clinic, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    clinic.import_referrals(path, pathway="cervical-neurotomy")
    clinic.advance("R1", "decline", at="2026-01-08")  # closed since: still the same referral
    again = clinic.import_referrals(path, pathway="cervical-neurotomy")
    assert (again.imported, again.already_enrolled) == (0, 3)
    assert len(clinic.list()) == 3


def test_a_bad_row_stops_everything_and_names_line_and_field(clinic: Clinic, tmp_path: Path) -> None:
    text = GOOD + "R4,2026-02-30,cervical-neurotomy,,\nbad id,2026-01-05,nowhere,,\n"
    report = clinic.import_referrals(write(tmp_path, text), pathway="cervical-neurotomy")
    assert report.imported == 0
    assert any(p.startswith("line 5: referred_at:") for p in report.problems)
    assert any(p.startswith("line 6: patient:") for p in report.problems)
    assert any(p.startswith("line 6: pathway:") for p in report.problems)
    assert clinic.list() == []


def test_skip_invalid_imports_the_good_rows(clinic: Clinic, tmp_path: Path) -> None:
    text = GOOD + "R4,not a date,cervical-neurotomy,,\nR5,2026-01-09,cervical-neurotomy,aetna,\n"
    report = clinic.import_referrals(write(tmp_path, text), pathway="cervical-neurotomy", skip_invalid=True)
    assert report.imported == 3
    assert report.to_dict()["invalid_rows"] == 2
    assert any("profile: unknown profile 'aetna'" in p for p in report.problems)


def test_a_patient_already_in_the_pathway_is_skipped(clinic: Clinic, tmp_path: Path) -> None:
    clinic.enroll("R1", "cervical-neurotomy", at="2025-12-01")
    report = clinic.import_referrals(write(tmp_path, GOOD), pathway="cervical-neurotomy")
    assert (report.imported, report.already_enrolled) == (2, 1)
    assert clinic.status("R1").since.date().isoformat() == "2025-12-01"


def test_duplicate_rows_in_one_file_are_reported(clinic: Clinic, tmp_path: Path) -> None:
    text = GOOD + "R1,2026-02-01,cervical-neurotomy,,\n"
    report = clinic.import_referrals(write(tmp_path, text), pathway="cervical-neurotomy")
    assert report.problems == ["line 5: patient: referred to cervical-neurotomy again (also on line 2)"]


def test_cli_import_exit_codes_and_header_check(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'i.db'}"
    runner = CliRunner()
    bad = write(tmp_path, GOOD + "R9,someday,,,\n", "bad.csv")
    result = runner.invoke(
        cli, ["--db", db, "import", "referrals", str(bad), "--pathway", "cervical-neurotomy"]
    )
    assert result.exit_code == 1 and "line 5: referred_at" in result.output
    assert "nothing imported" in result.output
    result = runner.invoke(
        cli,
        [
            "--db",
            db,
            "import",
            "referrals",
            str(bad),
            "--pathway",
            "cervical-neurotomy",
            "--skip-invalid",
            "--json",
        ],
    )
    assert result.exit_code == 0 and json.loads(result.output)["imported"] == 3
    header = write(tmp_path, "mrn,date\nR1,2026-01-01\n", "header.csv")
    result = runner.invoke(cli, ["--db", db, "import", "referrals", str(header)])
    assert (
        result.exit_code == 1 and "line 1 (header): missing column(s) patient, referred_at" in result.output
    )
    result = runner.invoke(cli, ["--db", db, "import", "referrals", str(tmp_path / "none.csv")])
    assert result.exit_code == 1 and "cannot read" in result.output
