"""docs/embedding.md is executed block by block, so the guide cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pathway

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"


def test_every_python_block_of_the_embedding_guide_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{GUIDE.name} block {number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block broke
            pytest.fail(f"block {number} of docs/embedding.md failed: {exc!r}\n{block}")
    assert (tmp_path / "embedding-guide.db").exists()


def test_the_public_api_is_listed_and_importable() -> None:
    for name in pathway.__all__:
        assert hasattr(pathway, name), name
    for name in ("Clinic", "PathwayError", "GuardRefused", "ConcurrencyError", "Verdict"):
        assert name in pathway.__all__
