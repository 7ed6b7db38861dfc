"""Kill the process (SIGKILL) at random points during `simulate` and `import referrals`.

After each kill: the SQLite file passes its integrity check, every committed
command is whole (its state, its event and its outbox message together), and no
half command is visible. Re-running the import completes it without duplicates.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6  # per command: 12 in all


def pathway(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pathway_cli.main", "--db", f"sqlite:///{db}", "--actor", "crash", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after(process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()


def check_whole(db: Path) -> dict[str, int]:
    """Integrity, and every committed command complete: one outbox message per enroll,
    transition and observation; contiguous sequences ending at the stored state."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'outbox'").fetchone()[0]:
            return {"events": 0}
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        observations = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
        messages = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        assert messages == events + observations, "a command was committed in part"
        broken = conn.execute(
            "SELECT n.id FROM enrollments n LEFT JOIN events e ON e.enrollment_id = n.id "
            "GROUP BY n.id HAVING count(e.id) <> n.last_seq OR max(e.seq) <> n.last_seq "
            "OR n.state <> (SELECT to_state FROM events x WHERE x.enrollment_id = n.id "
            "               ORDER BY x.seq DESC LIMIT 1)"
        ).fetchall()
        assert broken == [], f"enrollments whose state and events disagree: {broken}"
        duplicates = conn.execute(
            "SELECT patient_id, pathway_id, opened_at, count(*) FROM enrollments "
            "GROUP BY patient_id, pathway_id, opened_at HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == []
        return {
            "events": events,
            "enrollments": conn.execute("SELECT count(*) FROM enrollments").fetchone()[0],
        }
    finally:
        conn.close()


def test_killing_an_import_leaves_whole_batches_and_a_rerun_completes_it(tmp_path: Path) -> None:
    rows = 12000  # several batches: the kills land between and inside them
    csv = tmp_path / "referrals.csv"
    csv.write_text(
        "patient,referred_at,pathway\n"
        + "".join(f"K{i:05d},2026-0{1 + i % 9}-1{i % 10},cervical-neurotomy\n" for i in range(rows))
    )
    # Time one whole import on this machine, so the kills land inside the import
    # however fast or slow the machine is (a fixed delay let a fast machine finish).
    started = time.monotonic()
    pathway(tmp_path / "reference.db", "import", "referrals", str(csv)).wait()
    whole = time.monotonic() - started
    rng = random.Random(20261124)
    killed_mid_import = 0
    # Three databases, each killed twice (the second kill lands in the re-run that
    # resumes the first), then imported to the end: six kills in all.
    for round_ in range(KILLS // 2):
        db = tmp_path / f"import-{round_}.db"
        for _ in range(2):
            kill_after(pathway(db, "import", "referrals", str(csv)), rng.uniform(0.1, 0.8) * whole)
            mid_import = check_whole(db).get("enrollments", 0) < rows
            killed_mid_import += mid_import
            if not mid_import:  # the machine got faster than when it was timed: aim sooner
                whole *= 0.6
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pathway_cli.main",
                "--db",
                f"sqlite:///{db}",
                "import",
                "referrals",
                str(csv),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert check_whole(db)["enrollments"] == rows
    assert killed_mid_import >= KILLS // 2


def test_killing_a_simulation_never_leaves_half_a_command(tmp_path: Path) -> None:
    # Half the runs staged (500 patients a batch, so 800 patients make two batches),
    # half one command per transaction.
    modes = {"staged": ["--patients", "800"], "one-by-one": ["--patients", "80", "--one-by-one"]}
    # Time one whole run of each on this machine, so the kills land inside the run however
    # fast or slow (and however busy) the machine is: a fixed delay can miss it entirely.
    whole = {}
    for name, args in modes.items():
        started = time.monotonic()
        reference = pathway(tmp_path / f"reference-{name}.db", "simulate", *args, "--until", "2026-11-01")
        assert reference.wait() == 0
        whole[name] = time.monotonic() - started
    db = tmp_path / "simulate.db"
    rng = random.Random(7)
    killed = 0
    for seed in range(KILLS):
        name = "one-by-one" if seed % 2 else "staged"
        process = pathway(db, "simulate", *modes[name], "--seed", str(seed), "--until", "2026-11-01")
        kill_after(process, rng.uniform(0.2, 0.9) * whole[name])
        killed += process.returncode == -signal.SIGKILL
        check_whole(db)
    assert killed >= KILLS // 2, "most runs must be killed, not finish"
    assert check_whole(db)["events"] > 0
