"""Entry points of installed packages, each once.

The same distribution can be found twice on `sys.path` (an editable install and the
`*.egg-info` folder of its source tree when run from there); its entry points then come
back twice. Each (name, value) pair counts once, so a plug-in is never loaded, or a demo
run, twice, and a real clash of two packages is still seen.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points


def entry_points_of(group: str) -> list[EntryPoint]:
    """The entry points of `group`, in name order, each (name, value) once."""
    seen: dict[tuple[str, str], EntryPoint] = {}
    for ep in entry_points(group=group):
        seen.setdefault((ep.name, ep.value), ep)
    return sorted(seen.values(), key=lambda e: (e.name, e.value))
