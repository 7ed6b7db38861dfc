"""`pathway --server URL --token T COMMAND`: the patient commands through the service give
the same output and exit codes as on the database; the others say to run without it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pathway import Clinic
from tests.service.conftest import Server, pathway_here

STEPS = [
    ("enroll", "R1", "--at", "2026-10-01"),
    ("status", "R1"),
    ("advance", "R1", "start_evaluation", "--at", "2026-10-02"),
    ("advance", "R1", "order_imaging"),  # the coordinator may not: 3
    ("advance", "R1", "hold"),  # no reason: refused by a guard, 3
    ("advance", "R1", "perform_ablation"),  # not from this state: 1
    ("record", "R1", "contact_attempt", "outcome=no_response", "--at", "2026-10-03"),
    ("record", "R1", "contact_attempt", "outcome=maybe"),  # 1
    ("record", "R1", "contact_attempt", "nonsense"),  # 1
    ("correct", "R1", "1", "--reason", "wrong patient", "--at", "2026-10-04"),
    ("correct", "R1", "1", "--reason", "again"),  # final: 1
    ("check", "R1"),
    ("check", "R1", "hold"),
    ("status", "NOBODY"),  # 4
    ("advance", "R1", "hold", "--reason", "patient travelling", "--at", "2026-10-05"),
    ("advance", "R1", "resume", "--at", "2026-10-06"),
    ("list",),
    ("list", "--state", "nonsense"),
    ("worklist",),
    ("history", "R1"),
]
RECORDED = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?Z?)?")


def normalized(text: str) -> str:
    """Output with the times things were entered (which differ between two runs) blanked."""
    return RECORDED.sub("<entered>", text)


def test_the_patient_commands_give_the_same_output_and_codes(fresh_server: Server, tmp_path: Path) -> None:
    """The same steps on a database of its own and through the service (first in this
    module, so the service's rows get the same ids), as text and then as JSON."""
    local_db = f"sqlite:///{tmp_path / 'local.db'}"
    Clinic.open(local_db).close()
    remote = ("--server", fresh_server.url, "--token", fresh_server.tokens["cora"])
    local = ("--actor", "cora", "--role", "coordinator")
    for suffix, as_json in (("T", False), ("J", True)):
        for step in STEPS:
            args = [a.replace("R1", f"R1{suffix}") for a in step]
            if step[0] == "correct" and as_json:
                args[2] = "2"  # the J patient's observation
            if as_json:
                args.append("--json")
            mine = pathway_here(*local, *args, db=local_db)
            theirs = pathway_here(*remote, *args, db="sqlite:////nonexistent/never-opened.db")
            assert theirs.returncode == mine.returncode, (args, mine.stderr, theirs.stderr)
            if as_json and mine.stdout.strip():
                assert _comparable(json.loads(theirs.stdout)) == _comparable(json.loads(mine.stdout)), args
            else:
                assert normalized(theirs.stdout) == normalized(mine.stdout), args
            assert normalized(theirs.stderr) == normalized(mine.stderr), args


def _comparable(value: object) -> object:
    """JSON without what differs between two databases: entry times, ids of the service's rows."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in ("recorded_at", "error_recorded_at")}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_other_commands_say_to_run_without_server(fresh_server: Server) -> None:
    remote = ("--server", fresh_server.url, "--token", fresh_server.tokens["cora"])
    for args in (("import", "referrals", "x.csv"), ("db", "upgrade"), ("users", "list"), ("report", "rtt")):
        out = pathway_here(*remote, *args, db="sqlite:////nonexistent/x.db")
        assert out.returncode == 1, (args, out.stderr)
        assert "run it without --server" in out.stderr


def test_server_mode_needs_a_good_token_and_no_actor(fresh_server: Server) -> None:
    no_token = pathway_here("--server", fresh_server.url, "status", "R1T", db="sqlite:////nonexistent/x.db")
    assert no_token.returncode == 1 and "--token" in no_token.stderr
    bad = pathway_here(
        "--server", fresh_server.url, "--token", "pw_wrong", "status", "R1T", db="sqlite:////x.db"
    )
    assert bad.returncode == 1 and "not known" in bad.stderr
    actor = pathway_here(
        "--server",
        fresh_server.url,
        "--token",
        fresh_server.tokens["cora"],
        "--actor",
        "me",
        "status",
        "R1T",
        db="sqlite:////x.db",
    )
    assert actor.returncode == 1 and "--actor" in actor.stderr
    role = pathway_here(
        "--server",
        fresh_server.url,
        "--token",
        fresh_server.tokens["cora"],
        "--role",
        "physician",
        "status",
        "R1T",
        db="x",
    )
    assert role.returncode == 3 and "does not have the role" in role.stderr
    down = pathway_here("--server", "http://127.0.0.1:9", "--token", "pw_x", "status", "R1T", db="x")
    assert down.returncode == 1 and "cannot reach the service" in down.stderr
