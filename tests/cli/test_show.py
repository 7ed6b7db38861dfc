"""`pathway show PATIENT`: the patient on one screen, as a coordinator reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from pathway_cli.main import cli


def run(db: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", db, "--actor", "sam", "--role", "physician", *args])
    return result.exit_code, result.stdout, result.stderr


def test_show_names_state_clock_next_steps_and_observations(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run(db, "enroll", "S1", "--at", "2026-01-05")
    run(db, "advance", "S1", "decline", "--at", "2026-01-10", "--reason", "moved away")
    assert run(db, "enroll", "S1", "--at", "2026-02-02")[0] == 0
    run(db, "advance", "S1", "start_evaluation", "--at", "2026-02-03")
    run(db, "record", "S1", "contact_attempt", "outcome=no_response", "--at", "2026-02-04")
    run(db, "record", "S1", "contact_attempt", "outcome=wrong_number", "--at", "2026-02-05")
    run(db, "correct", "S1", "2", "--reason", "it was another patient", "--at", "2026-02-06")
    code, out, _ = run(db, "show", "S1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "S1"
    # The open episode first, then the earlier one, named so.
    assert "evaluation" in out and "(earlier episode)" in out
    assert out.index("state    evaluation") < out.index("state    declined (closed)")
    assert "RTT      running: day" in out and "of 18" in out
    assert "RTT      stopped by decline on 2026-01-10" in out
    assert "blocked  mark_lost" in out or "mark_lost" in out
    # Observations newest first, a correction marked with who made it, when and why.
    newest, older = out.index("outcome=wrong_number"), out.index("outcome=no_response")
    assert newest < older
    assert "entered in error: it was another patient (sam, 2026-02-06)" in out

    code, out, _ = run(db, "show", "S1", "--json")
    view = json.loads(out)
    assert [e["state"] for e in view["episodes"]] == ["evaluation", "declined"]
    assert view["episodes"][1]["rtt"]["running"] is False
    assert [o["data"]["outcome"] for o in view["observations"]] == ["wrong_number", "no_response"]
    assert view["observations"][0]["entered_in_error"] is True


def test_show_an_unknown_patient_is_not_found(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run(db, "enroll", "S1", "--at", "2026-01-05")
    code, _, err = run(db, "show", "NOBODY")
    assert code == 4 and "no patient" in err


def test_history_is_in_the_order_things_happened_and_names_the_other_episodes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run(db, "enroll", "H1", "--at", "2026-01-05")
    run(db, "advance", "H1", "decline", "--at", "2026-01-10", "--reason", "moved away")
    run(db, "enroll", "H1", "--at", "2026-02-02")
    run(db, "advance", "H1", "start_evaluation", "--at", "2026-02-05")
    run(db, "record", "H1", "contact_attempt", "outcome=no_response", "--at", "2026-02-03")  # back-dated
    code, out, _ = run(db, "history", "H1")
    assert code == 0
    lines = out.splitlines()
    order = [re.search(r"\d{4}-\d\d-\d\d", line).group(0) for line in lines[2:5]]  # type: ignore[union-attr]
    assert order == ["2026-02-02", "2026-02-03", "2026-02-05"]
    assert "episodes of this patient" in out
    assert "since 2026-02-02  evaluation  <- shown" in out
    assert "2026-01-05 to 2026-01-10  declined" in out
    code, earlier, _ = run(db, "history", "H1", "--at", "2026-01-07")
    assert code == 0 and "2026-01-05 to 2026-01-10  declined  <- shown" in earlier
