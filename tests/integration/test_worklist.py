"""The worklist names the next action, most urgent first."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from pathway import Clinic
from pathway_cli.main import cli

BASELINE = {
    "onset_date": "2025-05-01",
    "nrs": 7,
    "ndi": 22,
    "axial_predominant": True,
    "radiculopathy": "none",
    "red_flags": [],
}
BLOCK = {
    "side": "right",
    "levels": ["C4-5"],
    "agent": "lidocaine",
    "guidance": "fluoroscopy",
    "sedation": "none",
    "pre_nrs": 8,
    "post_nrs": 1,
    "relief_hours": 2,
}
SAFE = {
    "anticoagulant": False,
    "anticoagulant_plan": False,
    "implanted_device": "none",
    "device_plan": False,
    "pregnant": False,
    "site_infection": False,
}


def test_worklist_kinds_and_order(clinic: Clinic) -> None:
    # W1: evaluated and eligible: ready to schedule blocks
    clinic.enroll("W1", "cervical-neurotomy", at="2026-05-01")
    clinic.advance("W1", "start_evaluation", at="2026-05-02")
    clinic.record("W1", "baseline", BASELINE, at="2026-05-02")
    clinic.record(
        "W1", "conservative_care", {"modality": "exercise", "weeks": 8, "outcome": "failed"}, at="2026-05-02"
    )
    # W2: in evaluation without a baseline: blocked, naming the baseline
    clinic.enroll("W2", "cervical-neurotomy", at="2026-05-01")
    clinic.advance("W2", "start_evaluation", at="2026-05-03")
    # W3: referred long ago and never seen: over SLA and past 18 weeks
    clinic.enroll("W3", "cervical-neurotomy", at="2026-01-02")
    # W4: ablated on 2026-03-02, in follow-up: the 3-month follow-up is due around 2026-06-01
    clinic.enroll("W4", "cervical-neurotomy", at="2025-11-01")
    clinic.advance("W4", "start_evaluation", at="2025-11-05")
    clinic.record("W4", "baseline", {**BASELINE, "onset_date": "2025-01-01"}, at="2025-11-05")
    clinic.record(
        "W4", "conservative_care", {"modality": "exercise", "weeks": 8, "outcome": "failed"}, at="2025-11-05"
    )
    clinic.advance("W4", "schedule_blocks", at="2025-11-10")
    clinic.record("W4", "block", BLOCK, at="2025-12-01")
    clinic.record("W4", "block", {**BLOCK, "agent": "bupivacaine", "relief_hours": 5}, at="2026-01-05")
    clinic.advance("W4", "approve_ablation", at="2026-01-06")
    clinic.record("W4", "safety", SAFE, at="2026-03-02")
    clinic.record(
        "W4",
        "ablation",
        {"side": "right", "levels": ["C4-5"], "technique": "thermal", "guidance": "fluoroscopy"},
        at="2026-03-02",
    )
    clinic.advance("W4", "perform_ablation", at="2026-03-02")
    clinic.advance("W4", "begin_follow_up", at="2026-03-20")

    items = clinic.worklist(as_of="2026-06-05")
    kinds = {(i.patient, i.kind) for i in items}
    assert ("W1", "ready") in kinds
    assert ("W2", "blocked") in kinds
    assert ("W3", "over_sla") in kinds and ("W3", "rtt_breach") in kinds
    assert ("W4", "follow_up_due") in kinds
    assert items[0].kind == "rtt_breach" and items[0].patient == "W3"
    blocked = next(i for i in items if i.patient == "W2" and i.kind == "blocked")
    assert "baseline" in blocked.action
    clinic.record("W4", "follow_up", {"nrs": 3, "ndi": 10, "pgic": 6}, at="2026-06-02")
    assert ("W4", "follow_up_due") not in {(i.patient, i.kind) for i in clinic.worklist(as_of="2026-06-05")}
    coordinator = {(i.patient, i.kind) for i in clinic.worklist(as_of="2026-06-05", role="coordinator")}
    assert ("W1", "ready") not in coordinator  # scheduling blocks is a physician's step


def test_worklist_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    with Clinic.open(db, role="coordinator") as clinic:
        clinic.enroll("W3", "cervical-neurotomy", at="2026-01-02")
    out = CliRunner().invoke(cli, ["--db", db, "worklist", "--as-of", "2026-06-05", "--json"])
    assert out.exit_code == 0
    assert {i["kind"] for i in json.loads(out.output)} == {"new_referral", "over_sla", "rtt_breach"}
    csv_out = CliRunner().invoke(cli, ["--db", db, "worklist", "--as-of", "2026-06-05", "--csv"])
    assert csv_out.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(csv_out.output)))
    assert {r["kind"] for r in rows} == {"new_referral", "over_sla", "rtt_breach"}
    assert {r["patient"] for r in rows} == {"W3"}
