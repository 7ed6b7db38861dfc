"""Mistakes a user makes around the commands (a missing folder, a file that is not a
database, a pipe closed early) give one clear line, never "internal error"."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway.store import database
from pathway_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def pathway(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "--actor", "sam", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_writing_into_a_folder_that_does_not_exist_is_one_clear_error(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    for args in (
        ["export", "events", "--output"],
        ["report", "html", "--output"],
        ["export", "fhir", "P1", "--output"],
    ):
        target = tmp_path / "missing" / "file.out"
        code, _, err = pathway(tmp_path, *args, str(target))
        assert code == 1, args
        assert err.strip() == f"error: cannot write {target}: No such file or directory", args
        assert "internal" not in err


def test_dash_writes_to_standard_output(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    code, out, _ = pathway(tmp_path, "report", "html", "-o", "-")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and not (tmp_path / "-").exists()
    code, out, _ = pathway(tmp_path, "export", "events", "-o", "-")
    assert code == 0 and out.startswith("patient,pathway,") and "P1" in out
    code, out, _ = pathway(tmp_path, "export", "fhir", "P1", "-o", "-")
    assert code == 0 and '"resourceType": "Bundle"' in out


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("these are my notes\n")
    for args in (["list"], ["db", "upgrade"]):
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{not_a_db}", *args])
        assert result.exit_code == 1, args
        assert result.stderr.strip() == f"error: cannot open sqlite:///{not_a_db}: file is not a database"
    assert not_a_db.read_text() == "these are my notes\n"


def test_a_database_from_a_newer_pathway_is_named_as_such(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    conn = sqlite3.connect(tmp_path / "clinic.db")
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.close()
    for args in (["list"], ["db", "upgrade"]):
        code, _, err = pathway(tmp_path, *args)
        assert code == 1, args
        assert "revision 0099, newer than this pathway knows" in err and "install that version" in err
        assert "internal" not in err


def test_an_observation_id_too_large_for_the_database_is_a_usage_error(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    code, _, err = pathway(tmp_path, "correct", "P1", "9" * 25, "--reason", "typo")
    assert code == 2 and "OBSERVATION_ID" in err and "internal" not in err


def test_a_reader_that_closes_the_pipe_early_stops_the_export_quietly(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    python = [sys.executable, "-m", "pathway_cli.main", "--db", db, "--actor", "sam"]
    subprocess.run(
        [*python, "simulate", "--patients", "300", "--seed", "2"], cwd=ROOT, check=True, capture_output=True
    )
    export = subprocess.Popen(
        [*python, "export", "events"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert export.stdout is not None and export.stderr is not None
    first = export.stdout.readline()
    export.stdout.close()  # like `| head -1`
    err = export.stderr.read().decode()
    export.stderr.close()
    assert export.wait() in (0, 1)
    assert first.startswith(b"patient,pathway,")
    assert err == ""


def test_the_demo_never_writes_into_the_database_named_by_pathway_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic_db = tmp_path / "clinic.db"
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    monkeypatch.chdir(tmp_path)
    before = clinic_db.read_bytes()
    result = CliRunner().invoke(
        cli,
        ["demo", "--cohort", "0", "--html", str(tmp_path / "demo.html")],
        env={"PATHWAY_DB": f"sqlite:///{clinic_db}"},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo.db").exists()
    assert clinic_db.read_bytes() == before


def test_who_is_acting_is_checked_not_replaced(tmp_path: Path) -> None:
    enroll = ["enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05"]
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    for given, code, message in (
        (["--actor", "   "], 1, "error: actor: empty: say who is acting (--actor or PATHWAY_ACTOR)"),
        (["--actor", "sam\nadmin"], 1, "error: actor: must be on one line (no tabs or line breaks)"),
        (
            ["--role", ""],
            1,
            "error: role: empty: give one of coordinator, physician (--role or PATHWAY_ROLE)",
        ),
        (["--role", "physican"], 1, "error: --role: unknown role 'physican' (roles: coordinator, physician)"),
    ):
        result = CliRunner().invoke(cli, ["--db", db, *given, *enroll])
        assert (result.exit_code, result.stderr.strip()) == (code, message), given
    code, _, err = pathway(
        tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--name", "Jo\nBloggs"
    )
    assert code == 1 and "name: must be on one line" in err
    code, _, _ = pathway(tmp_path, *enroll)
    assert code == 0  # nothing of the refused commands was written before


def test_digits_of_other_scripts_are_not_numbers(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    pathway(tmp_path, "--role", "physician", "advance", "P1", "start_evaluation", "--at", "2026-01-06")
    baseline = ["ndi=22", "axial_predominant=yes", "radiculopathy=none", "red_flags="]
    for bad in ("nrs=\uff17", "nrs=\u0667", "onset_date=\uff12025-01-01"):
        values = [bad, *baseline] if bad.startswith("onset") else ["onset_date=2025-01-01", bad, *baseline]
        code, _, err = pathway(tmp_path, "--role", "physician", "record", "P1", "baseline", *values)
        assert code == 1 and "the value given is not allowed" in err, bad
    weeks = ["record", "P1", "conservative_care", "modality=physiotherapy", "outcome=failed"]
    code, _, err = pathway(tmp_path, "--role", "physician", *weeks, "weeks=\uff18")
    assert code == 1 and "weeks" in err
    code, _, _ = pathway(tmp_path, "--role", "physician", *weeks, "weeks=8")
    assert code == 0


def test_an_unknown_pathway_is_named_as_such_by_every_command(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    for args in (
        ["export", "events", "--pathway", "cervical-neurotmy"],
        ["status", "P1", "--pathway", "cervical-neurotmy"],
        ["history", "P1", "--pathway", "cervical-neurotmy"],
        ["sweep", "--pathway", "cervical-neurotmy"],
        ["list", "--pathway", "cervical-neurotmy"],
    ):
        code, out, err = pathway(tmp_path, *args)
        assert code == 4, args
        assert "unknown pathway 'cervical-neurotmy' (known: cervical-neurotomy, lumbar-neurotomy)" in err, (
            args
        )
        assert out == "", args  # no empty export file's header either


def test_a_version_that_is_not_loaded_says_how_to_load_it(tmp_path: Path) -> None:
    from pathway import Catalog, NotFound

    with pytest.raises(NotFound, match=r"version 7 is not loaded \(loaded: 1\); give the folder of its file"):
        Catalog.discover().get("cervical-neurotomy", 7)


def test_rtt_with_nobody_waiting_says_so(tmp_path: Path) -> None:
    assert pathway(tmp_path, "db", "upgrade")[0] == 0
    code, out, _ = pathway(tmp_path, "report", "rtt")
    assert code == 0 and out.startswith("Still waiting: nobody, so the standard does not apply")


def test_a_mistyped_database_path_is_not_an_empty_clinic(tmp_path: Path) -> None:
    typo = tmp_path / "clinc.db"
    for args in (
        ["list"],
        ["status", "P1"],
        ["worklist"],
        ["report", "rtt"],
        ["export", "events"],
        ["outbox", "list"],
        ["sweep"],
        ["--role", "physician", "record", "P1", "contact_attempt", "outcome=reached"],
    ):
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{typo}", "--actor", "sam", *args])
        assert result.exit_code == 4, args
        assert result.stderr.strip() == (
            f"error: no database at {typo}: check --db (or PATHWAY_DB); a new one is made by "
            "the first enroll, import, simulate or users add, or by `pathway db upgrade`"
        ), args
        assert not typo.exists(), args
    result = CliRunner().invoke(
        cli, ["--db", f"sqlite:///{typo}", "enroll", "P1", "--pathway", "cervical-neurotomy"]
    )
    assert result.exit_code == 0 and typo.exists()
    assert CliRunner().invoke(cli, ["--db", f"sqlite:///{typo}", "list"]).exit_code == 0


def test_what_has_not_happened_cannot_be_recorded(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from pathway.domain.timeutil import DATE_TOLERANCE

    now = datetime.now(UTC)
    # A date is midnight UTC: today in a zone up to UTC+14 is let through, later is not.
    latest_date = (now + DATE_TOLERANCE).date().isoformat()
    later = (now + DATE_TOLERANCE + timedelta(days=1)).date().isoformat()
    # A date-time is an instant: an hour ahead is already the future.
    an_hour_ahead = (now + timedelta(hours=1)).isoformat(timespec="seconds")
    for at in (later, an_hour_ahead):
        code, _, err = pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", at)
        assert code == 1 and "is in the future" in err, at
    assert pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", latest_date)[0] == 0
    for args in (
        ["advance", "P1", "start_evaluation", "--at", later],
        ["advance", "P1", "start_evaluation", "--at", an_hour_ahead],
        ["record", "P1", "contact_attempt", "outcome=reached", "--at", later],
        ["sweep", "--at", later],
        ["simulate", "--patients", "3", "--until", later],
    ):
        code, _, err = pathway(tmp_path, *args)
        assert code == 1 and "is in the future" in err, args
    csv = tmp_path / "referrals.csv"
    csv.write_text(
        f"patient,referred_at,pathway\nR1,2026-01-05,cervical-neurotomy\nR2,{later},cervical-neurotomy\n"
    )
    code, _, err = pathway(tmp_path, "import", "referrals", str(csv))
    assert code == 1 and "line 3: referred_at:" in err and "is in the future" in err


def test_a_report_window_that_ends_before_it_begins_is_refused(tmp_path: Path) -> None:
    pathway(tmp_path, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    for args in (["report", "bottlenecks"], ["report", "html", "-o", "-"]):
        code, out, err = pathway(tmp_path, *args, "--since", "2026-06-01", "--until", "2026-01-01")
        assert code == 1 and "--since 2026-06-01T00:00:00Z is after --until 2026-01-01T00:00:00Z" in err
        assert out == ""


def test_the_shipped_workflows_folder_given_again_loads_once(tmp_path: Path) -> None:
    code, out, err = pathway(tmp_path, "--workflows", str(ROOT / "workflows"), "workflows", "list")
    assert code == 0 and "cervical-neurotomy" in out and "also defined" not in err


def test_every_printing_command_takes_json(tmp_path: Path) -> None:
    """DESIGN.md: every command that prints takes --json. The exceptions print JSON (the
    schema, a FHIR Bundle) or choose their format (`export events --format jsonl`); `serve`
    runs the service (its log is JSON lines)."""
    import click

    def leaves(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
        if isinstance(command, click.Group):
            return [leaf for name, sub in command.commands.items() for leaf in leaves(sub, (*path, name))]
        return [(path, command)]

    without = {
        " ".join(path)
        for path, command in leaves(cli, ())
        if "--json" not in [opt for p in command.params for opt in p.opts]
    }
    assert without == {"workflows schema", "outbox schema", "export events", "export fhir", "serve"}
    code, out, _ = pathway(tmp_path, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["to"] == database.SCHEMA_HEAD
    code, out, _ = pathway(tmp_path, "workflows", "diagram", "cervical-neurotomy", "--json")
    assert code == 0 and json.loads(out)["diagram"].startswith("stateDiagram-v2")
    code, out, _ = pathway(tmp_path, "report", "html", "-o", str(tmp_path / "r.html"), "--json")
    assert code == 0 and json.loads(out)["wrote"] == str(tmp_path / "r.html")


def test_history_at_shows_an_earlier_episode(tmp_path: Path) -> None:
    enroll = ["enroll", "E1", "--pathway", "cervical-neurotomy"]
    pathway(tmp_path, *enroll, "--at", "2025-01-01")
    pathway(tmp_path, "advance", "E1", "decline", "--at", "2025-02-01")
    pathway(tmp_path, *enroll, "--at", "2025-06-01")
    code, out, _ = pathway(tmp_path, "history", "E1", "--json")
    assert code == 0 and [(e["trigger"], e["at"][:10]) for e in json.loads(out)] == [("enroll", "2025-06-01")]
    code, out, _ = pathway(tmp_path, "history", "E1", "--at", "2025-03-01", "--json")
    assert [(e["trigger"], e["at"][:10]) for e in json.loads(out)] == [
        ("enroll", "2025-01-01"),
        ("decline", "2025-02-01"),
    ]
