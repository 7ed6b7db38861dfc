"""Benchmark: how long a coordinator waits for a short command, against bare start-up.

    python bench/startup.py [--runs 15]

Times, as new processes, `pathway --help`, `pathway status PATIENT` and
`pathway check PATIENT` on a small SQLite database, beside a bare
`python -c "import sqlalchemy.orm"` (the baseline DESIGN.md names), interleaved so
that a noisy machine slows them alike, and prints each median and its ratio to the
baseline's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'startup.db'}"
        pathway = [python, "-m", "pathway_cli.main", "--db", db, "--actor", "bench"]
        subprocess.run(
            [*pathway, "enroll", "P1", "--pathway", "cervical-neurotomy", "--at", "2026-01-05"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        commands = {
            "import sqlalchemy.orm": [python, "-c", "import sqlalchemy.orm"],
            "pathway --help": [*pathway, "--help"],
            "pathway status P1": [*pathway, "status", "P1"],
            "pathway check P1": [*pathway, "check", "P1"],
        }
        for command in commands.values():  # warm the file cache and the bytecode
            timed(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(timed(command))
    base = statistics.median(times["import sqlalchemy.orm"])
    print(f"start-up: median of {args.runs} runs each, as new processes")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:24s} {median * 1000:7.0f} ms   ratio to the baseline {median / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
