"""Exports of the event log: CSV, JSON lines and XES; streamed; pseudonymized on request."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from pathway import Clinic, InvalidInput
from pathway.interop.event_export import event_rows, pseudonym
from pathway_cli.main import cli

KEY = "a-secret-key-of-some-length"
XES = "{http://www.xes-standard.org/}"


def journeys(clinic: Clinic) -> None:
    for patient in ("E1", "E2"):
        clinic.enroll(patient, "cervical-neurotomy", at="2026-01-05", role="coordinator")
        clinic.advance(patient, "start_evaluation", at="2026-01-06", role="coordinator")
    clinic.advance("E1", "hold", at="2026-01-07", reason="Mr Smith is abroad", role="coordinator")


def test_csv_and_jsonl_carry_every_event(clinic: Clinic) -> None:
    journeys(clinic)
    out = io.StringIO()
    assert clinic.export_events(out, "csv") == 5
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["patient"], r["seq"], r["trigger"]) for r in rows][:3] == [
        ("E1", "1", "enroll"),
        ("E1", "2", "start_evaluation"),
        ("E1", "3", "hold"),
    ]
    out = io.StringIO()
    clinic.export_events(out, "jsonl")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[2]["reason"] == "Mr Smith is abroad" and lines[2]["to"] == "on_hold"


def test_xes_has_a_trace_per_enrollment_with_the_standard_extensions(clinic: Clinic) -> None:
    journeys(clinic)
    out = io.StringIO()
    clinic.export_events(out, "xes")
    log = ET.fromstring(out.getvalue())
    assert {e.get("prefix") for e in log.findall(f"{XES}extension")} == {
        "concept",
        "time",
        "lifecycle",
        "org",
    }
    traces = log.findall(f"{XES}trace")
    assert len(traces) == 2
    first = traces[0].findall(f"{XES}event")
    keys = {a.get("key"): a.get("value") for a in first[0]}
    assert keys["concept:name"] == "enroll" and keys["time:timestamp"] == "2026-01-05T00:00:00Z"
    assert keys["lifecycle:transition"] == "complete" and "org:resource" in keys


def test_pseudonymized_exports_hide_identifiers_and_free_text(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    journeys(clinic)
    out = io.StringIO()
    with pytest.raises(InvalidInput, match="PATHWAY_PSEUDONYM_KEY"):
        clinic.export_events(out, "jsonl", pseudonymize=True)
    monkeypatch.setenv("PATHWAY_PSEUDONYM_KEY", KEY)
    clinic.export_events(out, "jsonl", pseudonymize=True)
    text = out.getvalue()
    assert "E1" not in text and "Mr Smith" not in text
    assert pseudonym(KEY.encode(), "E1") in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert "dr.test" not in text  # the clinic's actor: staff are not named either
    assert {line["actor"] for line in lines} == {pseudonym(KEY.encode(), "dr.test", "actor")}
    enrollments = {line["enrollment"] for line in lines}
    assert len(enrollments) == 2 and all(str(e).startswith("E-") for e in enrollments)
    again = io.StringIO()
    clinic.export_events(again, "jsonl", pseudonymize=True)
    assert again.getvalue() == text  # the same key, the same pseudonyms


def test_cli_writes_a_complete_file_or_none(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with Clinic.open(db) as clinic:
        journeys(clinic)
    out = tmp_path / "log.xes"
    result = CliRunner().invoke(
        cli, ["--db", db, "export", "events", "--format", "xes", "--output", str(out)]
    )
    assert result.exit_code == 0 and "wrote 5 events" in result.output
    ET.parse(out)
    refused = CliRunner().invoke(
        cli,
        ["--db", db, "export", "events", "--pseudonymize", "--output", str(tmp_path / "p.csv")],
        env={"PATHWAY_PSEUDONYM_KEY": ""},
    )
    assert refused.exit_code == 1 and not (tmp_path / "p.csv").exists()


def test_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    def peak(events: int) -> int:
        db = f"sqlite:///{tmp_path / f'm{events}.db'}"
        referrals = tmp_path / f"r{events}.csv"
        referrals.write_text(
            "patient,referred_at,pathway\n"
            + "".join(f"M{i},2026-01-05,cervical-neurotomy\n" for i in range(events))
        )
        with Clinic.open(db, role="coordinator") as clinic:
            assert clinic.import_referrals(referrals).imported == events
            tracemalloc.start()
            for _ in event_rows(clinic.store, None):
                pass
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return top

    small, large = peak(4000), peak(20000)
    assert large < small * 2  # five times the events, not five times the memory
