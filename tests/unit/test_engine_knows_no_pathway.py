"""The engine under pathway/ names no state, trigger, observation kind or field of a shipped
pathway: what it needs to know of a pathway comes from the workflow file.

Every string literal (docstrings aside) and every identifier of every module under
pathway/ is read with `ast`, and no shipped name may appear in them, whole or as a
word, except the words the workflow file format itself uses (its keys and field
types: `hold`, `levels`, `baseline`, `outcome`, `follow_up` are also section or key
names) and four plain English words the engine uses in their own sense (listed in
ENGLISH with why).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from pathway.definitions.schema import workflow_schema
from pathway.domain.definition import FIELD_TYPES

ROOT = Path(__file__).resolve().parents[2]
ENGINE = sorted((ROOT / "pathway").rglob("*.py"))

#: Words the engine uses in their everyday sense, not as the shipped pathways' names.
ENGLISH = {
    "side": "the side a procedure was on (FHIR laterality, a body-site template's {side})",
    "weeks": "durations in weeks (the RTT standard is declared in weeks)",
    "referred": "a referral's time in the CSV import (referred_at)",
    "resume": "the advice for a hold past its SLA ('resume or close it')",
}


def shipped_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "workflows").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        names |= set(data["states"])
        names |= {t["trigger"] for t in data["transitions"]}
        for kind, spec in data["observations"].items():
            names.add(kind)
            names |= set(spec["fields"])
    return names


def format_words() -> set[str]:
    """Every key of the workflow file format (its JSON Schema) and every field type."""
    found: set[str] = set(FIELD_TYPES)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                found.add(key)
                walk(value)
            for key in ("additionalProperties", "items"):
                walk(node.get(key))
            for option in node.get("oneOf", []):
                walk(option)

    walk(workflow_schema())
    return found


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def mentions(path: Path, forbidden: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        words: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value in forbidden:
                found.append(f"{path.name}:{node.lineno}: the literal {node.value!r}")
                continue
            words = re.findall(r"[a-z][a-z0-9_]*", node.value)
        elif isinstance(node, ast.Name):
            words = [node.id]
        elif isinstance(node, ast.Attribute):
            words = [node.attr]
        elif isinstance(node, ast.arg):
            words = [node.arg]
        found += [f"{path.name}:{getattr(node, 'lineno', 0)}: {w}" for w in words if w in forbidden]
    return found


def test_the_shipped_pathways_share_only_format_words_with_the_engine() -> None:
    shared = shipped_names() & format_words()
    # If a shipped pathway takes another format word as a name, it must be looked at here.
    assert shared == {"baseline", "follow_up", "hold", "levels", "outcome"}


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_engine_module_names_a_shipped_state_trigger_kind_or_field(path: Path) -> None:
    assert mentions(path, shipped_names() - format_words() - set(ENGLISH)) == []


def test_the_check_finds_a_shipped_name_when_there_is_one(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('STOP = "perform_ablation"\nx = {"score": 1}["nrs"]\nsql = "WHERE kind = \'block\'"\n')
    found = mentions(planted, shipped_names() - format_words() - set(ENGLISH))
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "block",
        "the literal 'nrs'",
        "the literal 'perform_ablation'",
    ]
