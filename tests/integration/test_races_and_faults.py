"""Races and faults (issue 14, items 1 and 2): what the loser of a race, a user of a busy
database and a reader of read-only media get is a clear answer, never a driver's error.

Each race is made, not hoped for: the first writer holds its transaction open (a batch)
until the second is seen waiting on it (PostgreSQL: a backend waiting on a lock; SQLite
cannot be asked, so a moment), then commits.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from pathway import Clinic
from pathway.store import database
from pathway_cli.main import cli

PATHWAY = "cervical-neurotomy"


def _waiting_on_a_lock(db_url: str, alive: Callable[[], bool]) -> None:
    if not db_url.startswith("postgresql"):
        time.sleep(0.7)
        return
    engine = create_engine(database.normalize_url(db_url))
    try:
        for _ in range(300):
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                ).scalar()
            if waiting or not alive():
                return
            time.sleep(0.05)
    finally:
        engine.dispose()


def _race(db_url: str, first: Callable[[Clinic], Any], second: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `first` in a held-open transaction, start the CLI command `second` against the
    same database, and commit once it waits; return what the CLI did."""
    with Clinic.open(db_url, actor="first", role="coordinator") as clinic:
        with clinic.batch():
            first(clinic)
            process = subprocess.Popen(
                [sys.executable, "-m", "pathway_cli.main", "--db", db_url, *second],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            _waiting_on_a_lock(db_url, lambda: process.poll() is None)
        out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_the_loser_of_an_enroll_race_is_told_the_patient_is_enrolled(db_url: str) -> None:
    done = _race(
        db_url, lambda c: c.enroll("R1", PATHWAY, at="2026-01-05"), ["enroll", "R1", "--pathway", PATHWAY]
    )
    assert done.returncode in (1, 5), done
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "already has an open enrollment" in done.stderr or "at the same moment" in done.stderr
    with Clinic.open(db_url) as clinic:
        assert [s.patient for s in clinic.list()] == ["R1"] and len(clinic.history("R1")) == 1


def test_the_same_file_imported_twice_at_once_enrolls_each_once(db_url: str, tmp_path: Path) -> None:
    rows = [f"Q{i:03d},2026-01-{1 + i % 28:02d}" for i in range(40)]
    csv = tmp_path / "referrals.csv"
    csv.write_text("patient,referred_at\n" + "\n".join(rows) + "\n")
    done = _race(
        db_url,
        lambda c: c.import_referrals(csv, pathway=PATHWAY),
        ["import", "referrals", str(csv), "--pathway", PATHWAY, "--json"],
    )
    assert done.returncode == 0, done  # the file's promise: a re-run is a no-op
    assert '"imported": 0' in done.stdout and '"already_enrolled": 40' in done.stdout
    with Clinic.open(db_url) as clinic:
        assert len(clinic.list()) == 40 and len(clinic.outbox()) == 40


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO settings (key, value) VALUES ('probe', 'x')")
    return holder


def test_a_database_locked_longer_than_the_wait_is_busy_exit_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "busy.db"
    url = f"sqlite:///{path}"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["--db", url, "enroll", "B1", "--pathway", PATHWAY, "--at", "2026-01-05"]
        ).exit_code
        == 0
    )
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 300)  # the wait, shortened for the test
    holder = _hold_write_lock(path)
    try:
        busy = runner.invoke(cli, ["--db", url, "advance", "B1", "start_evaluation"])
        assert busy.exit_code == 5, busy.output
        assert "the database is busy" in busy.output and "retry" in busy.output
        assert "OperationalError" not in busy.output and "internal error" not in busy.output
        # The schema check and the read commands take no write lock: they answer meanwhile.
        for command in (["status", "B1"], ["list"], ["history", "B1"], ["report", "bottlenecks"]):
            read = runner.invoke(cli, ["--db", url, *command])
            assert read.exit_code == 0, (command, read.output)
    finally:
        holder.rollback()
        holder.close()
    assert runner.invoke(cli, ["--db", url, "advance", "B1", "start_evaluation"]).exit_code == 0


def _read_only_mount(folder: Path) -> list[str] | None:
    """A command prefix that runs its command with `folder` mounted read-only (a private
    mount namespace), or None where this machine cannot make one."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    prefix = ["unshare", "-rm", "sh", "-c", script, "sh"]
    probe = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True, text=True)
    if probe.returncode == 0 or "Read-only file system" not in probe.stderr:
        (folder / "probe").unlink(missing_ok=True)
        return None
    return prefix


def test_read_commands_work_on_read_only_media(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    url = f"sqlite:///{folder / 'clinic.db'}"
    with Clinic.open(url, actor="t") as clinic:
        clinic.enroll("M1", PATHWAY, at="2026-01-05")
        clinic.advance("M1", "start_evaluation", at="2026-01-06")
    prefix = _read_only_mount(folder)
    if prefix is None:
        pytest.skip("this machine cannot mount a folder read-only (unshare -rm)")
    env = {**os.environ, "PATHWAY_DB": url}
    pathway = [sys.executable, "-m", "pathway_cli.main"]
    for command in (
        ["status", "M1"],
        ["history", "M1"],
        ["list"],
        ["check", "M1"],
        ["worklist"],
        ["report", "bottlenecks"],
        ["report", "rtt"],
        ["audit", "verify"],
    ):
        done = subprocess.run([*prefix, *pathway, *command], capture_output=True, text=True, env=env)
        assert done.returncode == 0, (command, done.stderr)
    write = subprocess.run(
        [*prefix, *pathway, "advance", "M1", "hold", "--reason", "x"], capture_output=True, text=True, env=env
    )
    assert write.returncode == 1 and "read-only" in write.stderr, write.stderr
    assert "Traceback" not in write.stderr
