"""Workflow versions: enrollments stay pinned; `migrate` moves them, refusing missing states."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import Clinic, DefinitionError
from pathway.definitions.catalog import Catalog
from pathway_cli.main import cli

SHIPPED = Path(__file__).resolve().parents[2] / "workflows" / "cervical-neurotomy.yaml"


def version_two(folder: Path) -> Path:
    """Version 2 of the cervical pathway: imaging renamed to imaging_review, SLA changed."""
    folder.mkdir(exist_ok=True)
    text = SHIPPED.read_text().replace("version: 1", "version: 2")
    text = text.replace(
        "  imaging:\n    optional: true\n    sla_days: 42",
        "  imaging_review:\n    optional: true\n    sla_days: 30",
    )
    text = text.replace("dest: imaging\n", "dest: imaging_review\n")
    text = text.replace("source: imaging\n", "source: imaging_review\n")
    text = text.replace(
        "source: [evaluation, imaging, diagnostic_block]",
        "source: [evaluation, imaging_review, diagnostic_block]",
    )
    (folder / "cervical-v2.yaml").write_text(text)
    return folder


def test_new_version_leaves_open_enrollments_pinned_and_migrate_moves_them(
    db_url: str, tmp_path: Path
) -> None:
    with Clinic.open(db_url, actor="a", role="physician") as clinic:
        clinic.enroll("P1", "cervical-neurotomy", at="2026-01-05")
        clinic.enroll("P2", "cervical-neurotomy", at="2026-01-05")
        clinic.advance("P2", "start_evaluation", at="2026-01-06")
        clinic.advance("P2", "order_imaging", at="2026-01-07")
    local = version_two(tmp_path / "local")
    with Clinic.open(db_url, workflows=[local], actor="a", role="physician") as clinic:
        assert clinic.status("P1").version == 1
        clinic.enroll("P3", "cervical-neurotomy", at="2026-01-08")
        assert clinic.status("P3").version == 2  # new enrollments take the latest
        preview = clinic.migrate("cervical-neurotomy", 2, dry_run=True, at="2026-01-09")
        assert {(r.patient, r.migrated) for r in preview} == {("P1", True), ("P2", False)}
        assert clinic.status("P1").version == 1  # a dry run changes nothing
        results = clinic.migrate("cervical-neurotomy", 2, at="2026-01-09")
        refused = next(r for r in results if not r.migrated)
        assert refused.patient == "P2" and "imaging does not exist" in (refused.reason or "")
        assert clinic.status("P1").version == 2
        assert clinic.status("P2").version == 1
        last = clinic.history("P1")[-1]
        assert (last.trigger, last.from_state, last.to_state) == ("migrate", "referred", "referred")
        assert dict(last.payload) == {"from_version": 1, "to_version": 2}
        (moved,) = [m["message"] for m in clinic.outbox() if m["message"]["type"] == "enrollment.migrated"]
        assert (moved["pathway_version"], moved["from_version"], moved["to_version"]) == (2, 1, 2)
        # Asked about a time before the migration, it was on version 1.
        assert clinic.status("P1", at="2026-01-08T12:00:00Z").version == 1
        assert clinic.status("P1", at="2026-01-09").version == 2
        # The event log says which version each event happened on.
        out = io.StringIO()
        clinic.export_events(out, "jsonl")
        p1 = [json.loads(line) for line in out.getvalue().splitlines() if '"P1"' in line]
        assert [(e["trigger"], e["version"]) for e in p1] == [("enroll", 1), ("migrate", 2)]
        # the migrated enrollment now runs on version 2's machine
        clinic.advance("P1", "start_evaluation", at="2026-01-10")
        clinic.advance("P1", "order_imaging", at="2026-01-11")
        assert clinic.status("P1").state == "imaging_review"


def test_migrate_cli_reports_and_exits_3_when_any_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'm.db'}"
    local = version_two(tmp_path / "local")
    runner = CliRunner()

    def run(*args: str) -> object:
        return runner.invoke(cli, ["--db", db, "--role", "physician", "--workflows", str(local), *args])

    for patient in ("P1", "P2"):
        runner.invoke(
            cli, ["--db", db, "enroll", patient, "--pathway", "cervical-neurotomy", "--at", "2026-01-05"]
        )
    # enrolled on version 1 because the local directory was not given then
    result = run(
        "migrate",
        "--pathway",
        "cervical-neurotomy",
        "--to-version",
        "2",
        "--state",
        "referred",
        "--json",
        "--at",
        "2026-01-06",
    )
    assert result.exit_code == 0, result.output
    assert all(r["migrated"] for r in json.loads(result.output))
    result = run("migrate", "--pathway", "cervical-neurotomy", "--to-version", "3")
    assert result.exit_code == 4 and "version 3" in result.output
    result = run("migrate", "--pathway", "cervical-neurotomy", "--to-version", "2", "--state", "nowhere")
    assert result.exit_code == 1


def test_older_versions_stay_loadable_beside_newer(tmp_path: Path) -> None:
    catalog = Catalog.discover([version_two(tmp_path / "local")])
    assert catalog.versions("cervical-neurotomy") == (1, 2)
    assert "imaging" in catalog.get("cervical-neurotomy", 1).states
    assert "imaging_review" in catalog.get("cervical-neurotomy").states


def test_the_same_id_and_version_twice_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dupe"
    folder.mkdir()
    (folder / "copy.yaml").write_text(SHIPPED.read_text())
    with pytest.raises(DefinitionError, match="also defined"):
        Catalog.discover([folder])
