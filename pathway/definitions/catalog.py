"""The catalog of workflow definitions available to a clinic.

Shipped pathways come from packages registered in the `pathway.workflows`
entry-point group (each names a package whose directory holds `*.yaml` files);
a clinic adds its own directories (YAML only). Every (id, version) stays
loadable, so enrollments pinned to an older version keep working.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pathway.definitions.loader import load_file
from pathway.domain.definition import Workflow
from pathway.domain.guards import GuardRegistry, installed_guards
from pathway.errors import DefinitionError, NotFound

WORKFLOWS_ENTRY_POINT_GROUP = "pathway.workflows"
WORKFLOWS_ENV = "PATHWAY_WORKFLOWS"


@cache
def shipped_directories() -> tuple[Path, ...]:
    """Directories of the packages registered under `pathway.workflows`."""
    from pathway.domain.plugins import entry_points_of

    dirs: list[Path] = []
    for ep in entry_points_of(WORKFLOWS_ENTRY_POINT_GROUP):
        module = ep.load()
        # __file__ works for editable installs too, where __path__ may hold a finder hook.
        if getattr(module, "__file__", None):
            dirs.append(Path(module.__file__).parent)
        else:
            dirs += [Path(p) for p in getattr(module, "__path__", []) if Path(p).is_dir()]
    return tuple(dirs)


def env_directories() -> tuple[Path, ...]:
    """Directories named in PATHWAY_WORKFLOWS (separated like PATH)."""
    raw = os.environ.get(WORKFLOWS_ENV, "")
    return tuple(Path(p) for p in raw.split(os.pathsep) if p)


def workflow_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


class Catalog:
    """Validated workflows by (id, version)."""

    def __init__(self, workflows: Iterable[Workflow], guards: GuardRegistry) -> None:
        self.guards = guards
        self._by_key: dict[tuple[str, int], Workflow] = {}
        for wf in workflows:
            if wf.key in self._by_key:
                other = self._by_key[wf.key].source
                raise DefinitionError(wf.source, [f"{wf.id} version {wf.version} is also defined in {other}"])
            self._by_key[wf.key] = wf

    @classmethod
    def discover(cls, extra_dirs: Iterable[str | Path] = (), guards: GuardRegistry | None = None) -> Catalog:
        """Load the shipped pathways plus every `*.yaml` in `extra_dirs` and PATHWAY_WORKFLOWS."""
        guards = guards or installed_guards()
        dirs = [*shipped_directories(), *env_directories(), *(Path(d) for d in extra_dirs)]
        files: list[Path] = []
        seen: set[Path] = set()
        for d in dirs:
            if not d.is_dir():
                raise NotFound(f"workflow directory {str(d)!r} does not exist")
            if d.resolve() in seen:
                continue  # the same folder named twice (e.g. the shipped one again) loads once
            seen.add(d.resolve())
            files += workflow_files(d)
        problems: list[str] = []
        loaded: list[Workflow] = []
        for f in files:
            try:
                loaded.append(load_file(f, guards))
            except DefinitionError as exc:
                problems += [f"{exc.source}: {p}" for p in exc.problems]
        if problems:
            raise DefinitionError("workflows", problems)
        return cls(loaded, guards)

    def get(self, workflow_id: str, version: int | None = None) -> Workflow:
        """The workflow `workflow_id` at `version` (the latest when None)."""
        if version is not None:
            try:
                return self._by_key[(workflow_id, version)]
            except KeyError:
                loaded = ", ".join(str(v) for (i, v) in sorted(self._by_key) if i == workflow_id) or "none"
                raise NotFound(
                    f"workflow {workflow_id} version {version} is not loaded (loaded: {loaded}); "
                    "give the folder of its file with --workflows DIR or PATHWAY_WORKFLOWS"
                ) from None
        versions = [v for (i, v) in self._by_key if i == workflow_id]
        if not versions:
            known = ", ".join(self.ids()) or "none"
            raise NotFound(f"unknown pathway {workflow_id!r} (known: {known})")
        return self._by_key[(workflow_id, max(versions))]

    def default(self) -> Workflow:
        """The pathway commands use when none is named (`default: true` in its file; with one
        pathway loaded, that one)."""
        ids = self.ids()
        found = [i for i in ids if self.get(i).default] or (list(ids) if len(ids) == 1 else [])
        if not found:
            raise NotFound(f"no pathway is the default: name one (--pathway; known: {', '.join(ids)})")
        if len(found) > 1:  # e.g. a clinic's copy of a shipped file kept `default: true`
            raise NotFound(
                f"several pathways say they are the default ({', '.join(found)}): name one with --pathway"
            )
        return self.get(found[0])

    def region(self, workflow_id: str) -> str:
        """The body region a pathway's episodes belong to (its id when it names none, or when
        it is not loaded): two episodes of one region may not overlap."""
        versions = [v for (i, v) in self._by_key if i == workflow_id]
        return (self._by_key[(workflow_id, max(versions))].region if versions else "") or workflow_id

    def ids(self) -> tuple[str, ...]:
        return tuple(sorted({i for (i, _) in self._by_key}))

    def all(self) -> tuple[Workflow, ...]:
        return tuple(self._by_key[k] for k in sorted(self._by_key))

    def versions(self, workflow_id: str) -> tuple[int, ...]:
        return tuple(sorted(v for (i, v) in self._by_key if i == workflow_id))
