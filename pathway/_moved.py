"""Modules that moved in 0.2 (the sub-package layout), importable by their old names.

`import pathway.guards` still works and gives a module whose names are those of
`pathway.domain.guards`, with a DeprecationWarning that names the new place. The
old names go in a later release; CHANGELOG.md lists them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: old module name -> where it lives now
MOVED = {
    "pathway.record": "pathway.domain.record",
    "pathway.verdicts": "pathway.domain.verdicts",
    "pathway.guards": "pathway.domain.guards",
    "pathway.machine": "pathway.domain.machine",
    "pathway.timeutil": "pathway.domain.timeutil",
    "pathway.fields": "pathway.domain.fields",
    "pathway.definition": "pathway.domain.definition",
    "pathway.loader": "pathway.definitions.loader",
    "pathway.schema": "pathway.definitions.schema",
    "pathway.catalog": "pathway.definitions.catalog",
    "pathway.describe": "pathway.definitions.describe",
    "pathway.diagram": "pathway.definitions.diagram",
    "pathway.views": "pathway.service.results",
    "pathway.worklist": "pathway.service.worklist",
    "pathway.simulate": "pathway.service.simulate",
    "pathway.referrals": "pathway.interop.referrals",
    "pathway.export": "pathway.interop.event_export",
    "pathway.outbox": "pathway.interop.delivery",
    "pathway.fhir": "pathway.interop.fhir",
    "pathway.html_report": "pathway.reports.html",
    "pathway.html_charts": "pathway.reports.charts",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(
            f"{spec.name} has moved to {self.target}; import it from there "
            f"({spec.name} will be removed in a later release)",
            DeprecationWarning,
            stacklevel=4,
        )
        real = importlib.import_module(self.target)
        alias = types.ModuleType(spec.name, real.__doc__)

        def forward(name: str) -> Any:
            return getattr(real, name)

        alias.__dict__.update(
            __getattr__=forward,
            __dir__=lambda: dir(real),
            __all__=getattr(real, "__all__", [n for n in dir(real) if not n.startswith("_")]),
        )
        return alias

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on sys.meta_path once."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
