"""The installed `pathway` command, and a wheel installed into a fresh virtual environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def console_script() -> str:
    found = Path(sys.executable).with_name("pathway")
    if found.exists():
        return str(found)
    which = shutil.which("pathway")
    assert which, "the pathway console script is not installed"
    return which


def test_the_installed_console_script_enrolls_and_reports(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'script.db'}"
    command = [console_script(), "--db", db, "--actor", "sam"]
    enrolled = subprocess.run(
        [*command, "enroll", "MRN7", "--pathway", "cervical-neurotomy", "--at", "2026-01-05"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    status = subprocess.run(
        [*command, "status", "MRN7", "--json"], capture_output=True, text=True, check=False
    )
    assert json.loads(status.stdout)["state"] == "referred"
    refused = subprocess.run(
        [*command, "advance", "MRN7", "order_imaging"], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 1 and "from referred you can use" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_a_wheel_in_a_fresh_environment_finds_the_shipped_pathways(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pathway-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    # Run from an empty folder so nothing is imported from the source tree.
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PATHWAY_WORKFLOWS")}
    script = str(env_dir / "bin" / "pathway")
    listed = subprocess.run(
        [script, "workflows", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    ids = {w["id"] for w in json.loads(listed.stdout)}
    assert {"cervical-neurotomy", "lumbar-neurotomy"} <= ids
    assert all(str(ROOT) not in w["source"] for w in json.loads(listed.stdout))
    demo = subprocess.run([script, "demo"], capture_output=True, text=True, cwd=work, env=env, check=False)
    assert demo.returncode == 0, demo.stderr
    assert (work / "demo.db").exists()
