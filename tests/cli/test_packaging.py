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


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with pathway installed from a wheel built from this tree."""
    root = tmp_path_factory.mktemp("fresh")
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pathway_clinic-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    installed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    return env_dir


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PATHWAY_WORKFLOWS")}


@pytest.mark.slow
def test_a_wheel_in_a_fresh_environment_finds_the_shipped_pathways(fresh_env: Path, tmp_path: Path) -> None:
    # Run from an empty folder so nothing is imported from the source tree.
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = str(fresh_env / "bin" / "pathway")
    listed = subprocess.run(
        [script, "workflows", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=work,
        env=clean_env(),
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    ids = {w["id"] for w in json.loads(listed.stdout)}
    assert {"cervical-neurotomy", "lumbar-neurotomy"} <= ids
    assert all(str(ROOT) not in w["source"] for w in json.loads(listed.stdout))
    demo = subprocess.run(
        [script, "demo", "--cohort", "40"],
        capture_output=True,
        text=True,
        cwd=work,
        env=clean_env(),
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    assert (work / "demo.db").exists()
    # The clinic service is in the wheel too: its app builds (routes, FHIR face, templates).
    service = subprocess.run(
        [
            str(fresh_env / "bin" / "python"),
            "-c",
            "from pathway import Clinic; from pathway.api.app import create_app; "
            "c = Clinic.open('sqlite:///demo.db'); app = create_app(c); "
            "print(len(app.openapi()['paths']))",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=clean_env(),
        check=False,
    )
    assert service.returncode == 0, service.stderr
    assert int(service.stdout) > 20


@pytest.mark.slow
def test_a_host_application_with_its_own_workflows_and_cli_packages(fresh_env: Path, tmp_path: Path) -> None:
    """pathway installs its command line and shipped pathways as pathway_cli and
    pathway_workflows, so an application with packages named `cli` and `workflows`
    (common names) can embed it: with top-level names, its own shadowed ours and
    every pathway vanished without an error."""
    host = tmp_path / "hostapp"
    for package in ("workflows", "cli"):
        (host / package).mkdir(parents=True)
        (host / package / "__init__.py").write_text("HOST = True\n")
    embedded = subprocess.run(
        [
            str(fresh_env / "bin" / "python"),
            "-c",
            "import cli, workflows; assert cli.HOST and workflows.HOST\n"
            "from pathway import Clinic\n"
            "with Clinic.open('sqlite:///host.db') as clinic:\n"
            "    print(','.join(clinic.catalog.ids()))\n"
            "    clinic.enroll('H1', 'cervical-neurotomy', at='2026-01-05')\n",
        ],
        capture_output=True,
        text=True,
        cwd=host,
        env=clean_env(),
        check=False,
    )
    assert embedded.returncode == 0, embedded.stderr
    assert embedded.stdout.strip() == "cervical-neurotomy,lumbar-neurotomy"
    listed = subprocess.run(
        [str(fresh_env / "bin" / "pathway"), "--db", "sqlite:///host.db", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=host,
        env=clean_env(),
        check=False,
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["patient"] == "H1", listed.stderr


PLUGIN_MODULE = '''
"""A clinic's own guard, shipped as an installed package."""
from pathway import Criteria, guard


@guard("consent_signed", reads={"consent": ("signed",)})
def consent_signed(record, params):
    """The patient signed the consent form."""
    c = Criteria("consent_signed")
    latest = record.latest("consent")
    c.require(latest is not None and latest["signed"], "consent",
              "no signed consent is recorded: record consent signed=yes")
    return c.verdict()


GUARDS = {"consent_signed": consent_signed}
'''

LOCAL_PATHWAY = """
id: injection-clinic
version: 1
title: A clinic's own pathway using a plug-in guard
roles: [coordinator]
states:
  waiting: {initial: true, sla_days: 7}
  treated: {terminal: true}
transitions:
  - {trigger: treat, source: waiting, dest: treated, guards: [consent_signed]}
observations:
  consent:
    fields:
      signed: {type: bool}
"""


@pytest.mark.slow
def test_a_plugin_package_contributes_a_guard_to_a_local_pathway(fresh_env: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "clinic-guards"
    (plugin / "clinic_guards").mkdir(parents=True)
    (plugin / "clinic_guards" / "__init__.py").write_text(PLUGIN_MODULE)
    (plugin / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "clinic-guards"\nversion = "1.0"\n'
        '[project.entry-points."pathway.guards"]\nclinic = "clinic_guards:GUARDS"\n'
    )
    installed = subprocess.run(
        [str(fresh_env / "bin" / "python"), "-m", "pip", "install", "--quiet", str(plugin)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    local = tmp_path / "local"
    local.mkdir()
    (local / "injection.yaml").write_text(LOCAL_PATHWAY)
    db = f"sqlite:///{tmp_path / 'plugin.db'}"
    base = [str(fresh_env / "bin" / "pathway"), "--db", db, "--workflows", str(local)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, cwd=tmp_path, env=clean_env(), check=False
        )

    assert run("enroll", "P1", "--pathway", "injection-clinic").returncode == 0
    refused = run("advance", "P1", "treat")
    assert refused.returncode == 3 and "no signed consent" in refused.stderr
    assert run("record", "P1", "consent", "signed=yes").returncode == 0
    assert run("advance", "P1", "treat").returncode == 0
    # the same file without the plug-in installed names the unknown guard
    missing = subprocess.run(
        [sys.executable, "-m", "pathway_cli.main", "--workflows", str(local), "workflows", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert missing.returncode == 1 and "unknown guard 'consent_signed'" in missing.stderr


def test_the_distribution_is_pathway_clinic_and_version_says_so() -> None:
    """PyPI's "pathway" is another project: this one installs as pathway-clinic, keeping the
    import name and the command (issue 14, item 13)."""
    from importlib.metadata import distribution

    import pathway

    dist = distribution("pathway-clinic")
    assert dist.version == pathway.__version__
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"pathway": "pathway_cli.main:main"}
    done = subprocess.run([console_script(), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"pathway (distribution pathway-clinic) {pathway.__version__}"
