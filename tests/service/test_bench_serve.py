"""`bench/serve.py` and `bench/serve_ab.py` run (tiny, on PostgreSQL) and print what the
README says: each pair's rates, the median ratio, the latency, the CPU an advance costs
each way (where /proc can be read); each service's rate and CPU. Nothing about speed is
asserted here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_the_service_benchmark_runs_and_reports(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    args = ["--url", PG_URL, "--patients", "8", "--rounds", "1", "--clients", "2", "--pairs", "2"]
    args += ["--workers", "1", "--client", "stdlib"]  # the default raw client runs in the other test
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serve.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert len(re.findall(r"pair \d: in process .* ratio \d\.\d\d", out)) == 2, out
    assert re.search(r"median of 2: \d\.\d\d", out) and "p50" in out, out
    if sys.platform == "linux":
        assert re.search(r"in process: +this process \d\.\d\d \+ database \d\.\d\d = \d\.\d\d ms", out), out
        assert re.search(r"through HTTP: +service \d\.\d\d \+ clients \d\.\d\d \+ database", out), out


@pytest.mark.postgres
def test_the_service_a_b_benchmark_runs_and_reports(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("PATHWAY_TEST_DATABASE_URL is not set")
    args = ["--url", PG_URL, "--b=--pin-cpus", "--patients", "6", "--clients", "2", "--rounds", "2"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serve_ab.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert re.search(r"A \(no options\): \d+ advances/s .* service CPU \d\.\d\d ms", done.stdout), done.stdout
    assert re.search(r"B \(--pin-cpus\): \d+ advances/s", done.stdout), done.stdout
    assert re.search(r"median of 2 turns: \d\.\d{3}", done.stdout), done.stdout
