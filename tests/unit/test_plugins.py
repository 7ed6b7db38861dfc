"""Entry points found twice (the same distribution on sys.path twice) count once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pathway.domain.plugins import entry_points_of


def _dist(folder: Path, name: str, lines: str) -> None:
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pathway.test_group]\n{lines}\n")


def test_the_same_entry_point_twice_is_one_and_a_clash_is_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(tmp_path / "a", "plugin", "one = somewhere:THING")
    _dist(tmp_path / "b", "plugin", "one = somewhere:THING")  # the same, found again
    _dist(tmp_path / "c", "other", "one = elsewhere:THING")  # another package, the same name
    for folder in ("a", "b", "c"):
        monkeypatch.syspath_prepend(str(tmp_path / folder))
    found = entry_points_of("pathway.test_group")
    assert [(e.name, e.value) for e in found] == [("one", "elsewhere:THING"), ("one", "somewhere:THING")]
    assert sys.path[0] == str(tmp_path / "c")
