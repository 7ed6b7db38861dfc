"""CLINICAL.md's worked examples, exactly as written, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pathway_cli.main import cli


class Coordinator:
    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path / 'examples.db'}"
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0) -> Result:
        result = self.runner.invoke(cli, ["--db", self.db, "--actor", "dr.lee", "--role", "physician", *args])
        assert result.exit_code == expect, result.output
        return result

    def block(
        self,
        when: str,
        agent: str,
        pre: int,
        post: int,
        hours: float,
        side: str = "right",
        levels: str = "C4-5,C5-6",
    ) -> None:
        self(
            "record",
            "P58",
            "block",
            f"side={side}",
            f"levels={levels}",
            f"agent={agent}",
            "guidance=fluoroscopy",
            "sedation=none",
            f"pre_nrs={pre}",
            f"post_nrs={post}",
            f"relief_hours={hours}",
            "--at",
            when,
        )


@pytest.fixture
def clinic(tmp_path: Path) -> Coordinator:
    """The 58-year-old of example 1: neck pain for 8 months, 8 weeks of failed physiotherapy,
    baseline NRS 7 and NDI 22, evaluated and scheduled for blocks."""
    run = Coordinator(tmp_path)
    run("enroll", "P58", "--pathway", "cervical-neurotomy", "--at", "2026-01-05")
    run("advance", "P58", "start_evaluation", "--at", "2026-01-12")
    run(
        "record",
        "P58",
        "baseline",
        "onset_date=2025-05-12",
        "nrs=7",
        "ndi=22",
        "axial_predominant=true",
        "radiculopathy=none",
        "red_flags=",
        "--at",
        "2026-01-12",
    )
    run(
        "record",
        "P58",
        "conservative_care",
        "modality=physiotherapy",
        "weeks=8",
        "outcome=failed",
        "--at",
        "2026-01-12",
    )
    run("advance", "P58", "schedule_blocks", "--at", "2026-01-19")
    return run


def test_example_1_two_positive_blocks_then_ablation_and_a_successful_6_month_follow_up(
    clinic: Coordinator,
) -> None:
    clinic.block("2026-01-26", "lidocaine", 7, 1, 2)  # 85.7%, 2 h
    clinic.block("2026-02-16", "bupivacaine", 7, 0, 6)  # 21 days later, 100%, 6 h
    clinic("advance", "P58", "approve_ablation", "--at", "2026-02-17")
    clinic(
        "record",
        "P58",
        "safety",
        "anticoagulant=no",
        "anticoagulant_plan=no",
        "implanted_device=none",
        "device_plan=no",
        "pregnant=no",
        "site_infection=no",
        "--at",
        "2026-03-09",
    )
    clinic(
        "record",
        "P58",
        "ablation",
        "side=right",
        "levels=C4-5,C5-6",
        "technique=thermal",
        "guidance=fluoroscopy",
        "--at",
        "2026-03-09",
    )
    clinic("advance", "P58", "perform_ablation", "--at", "2026-03-09")
    clinic("advance", "P58", "begin_follow_up", "--at", "2026-03-22", expect=3)  # 13 days
    clinic("advance", "P58", "begin_follow_up", "--at", "2026-03-23")
    clinic("record", "P58", "follow_up", "nrs=3", "ndi=12", "pgic=6", "--at", "2026-09-09")
    status = json.loads(clinic("status", "P58", "--json", "--at", "2026-09-10").output)
    assert status["state"] == "follow_up"
    discharge = next(t for t in status["triggers"] if t["trigger"] == "discharge")
    assert discharge["allowed"] is True
    clinic("advance", "P58", "discharge", "--at", "2026-09-10")
    history = json.loads(clinic("history", "P58", "--json").output)
    assert [e["to"] for e in history] == [
        "referred",
        "evaluation",
        "diagnostic_block",
        "ablation",
        "recovery",
        "follow_up",
        "discharged",
    ]


def test_example_2_second_block_at_71_percent_refuses_until_a_fourth_positive_block(
    clinic: Coordinator,
) -> None:
    clinic.block("2026-01-26", "lidocaine", 7, 1, 2)
    clinic.block("2026-02-16", "bupivacaine", 7, 2, 3)  # 71.4% for 3 h
    refused = clinic("advance", "P58", "approve_ablation", "--at", "2026-02-17", "--json", expect=3)
    body = json.loads(refused.stdout)
    assert body["refused"] is True
    assert [r["message"] for r in body["reasons"]] == [
        "second block (2026-02-16) relief 71.4% is below the 80% threshold"
    ]
    clinic.block("2026-03-02", "lidocaine", 10, 2, 1.5)  # third: 80%, 14 days later
    refused = clinic("advance", "P58", "approve_ablation", "--at", "2026-03-03", expect=3)
    assert "71.4% is below the 80% threshold" in refused.output
    clinic.block("2026-03-16", "bupivacaine", 10, 1, 5)  # fourth: 90%, longer than lidocaine
    clinic("advance", "P58", "approve_ablation", "--at", "2026-03-17")
    assert json.loads(clinic("status", "P58", "--json").output)["state"] == "ablation"


def test_example_3_blocks_on_different_sides_refuse(clinic: Coordinator) -> None:
    clinic.block("2026-01-26", "lidocaine", 10, 1, 2, side="right")
    clinic.block("2026-02-16", "bupivacaine", 10, 1, 5, side="left")
    refused = clinic("advance", "P58", "approve_ablation", "--at", "2026-02-17", expect=3)
    assert "different sides" in refused.output
    checked = json.loads(clinic("check", "P58", "approve_ablation", "--json").output)
    assert checked[0]["allowed"] is False
    assert checked[0]["reasons"][0]["criterion"] == "same_side"
