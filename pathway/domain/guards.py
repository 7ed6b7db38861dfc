"""The guards' contract and registry.

A guard is a pure function of a read-only `PatientRecord` and its parameters
that returns a `Verdict` naming every failed criterion. Guards are registered by
name; workflow files refer to them by that name. Packages contribute guards
through the `pathway.guards` entry-point group: each entry point names a mapping
of guard name to `GuardSpec` (or a plain guard function).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pathway.domain.definition import GuardRef, Workflow
from pathway.domain.record import PatientRecord
from pathway.domain.verdicts import Verdict
from pathway.errors import DefinitionError, GuardError, PathwayError

GuardFn = Callable[[PatientRecord, Mapping[str, Any]], Verdict]

ENTRY_POINT_GROUP = "pathway.guards"


@dataclass(frozen=True)
class GuardSpec:
    """A registered guard.

    `reads` names the observation kinds and fields the guard reads, and `params`
    the parameters it needs, so loading a workflow can refuse one that names a
    guard whose inputs it does not define.
    """

    name: str
    fn: GuardFn
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    params: tuple[str, ...] = ()
    description: str = ""

    def __call__(self, record: PatientRecord, params: Mapping[str, Any]) -> Verdict:
        return self.fn(record, params)


def guard(
    name: str,
    *,
    reads: Mapping[str, Iterable[str]] | None = None,
    params: Iterable[str] = (),
) -> Callable[[GuardFn], GuardSpec]:
    """Decorator that turns a guard function into a `GuardSpec` (docstring = description)."""

    def wrap(fn: GuardFn) -> GuardSpec:
        return GuardSpec(
            name=name,
            fn=fn,
            reads={k: tuple(v) for k, v in (reads or {}).items()},
            params=tuple(params),
            description=(fn.__doc__ or "").strip().split("\n")[0],
        )

    return wrap


class GuardRegistry:
    """Guards by name."""

    def __init__(self, specs: Iterable[GuardSpec] = ()) -> None:
        self._specs: dict[str, GuardSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: GuardSpec | GuardFn, name: str | None = None) -> None:
        if not isinstance(spec, GuardSpec):
            fn = spec
            spec = GuardSpec(name=name or fn.__name__, fn=fn)
        self._specs[spec.name] = spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> GuardSpec:
        return self._specs[name]

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def evaluate(self, workflow: Workflow, ref: GuardRef, record: PatientRecord) -> Verdict:
        """Run one guard with the parameters the enrollment's profile gives it. A guard
        that raises, or returns something other than a Verdict, is a GuardError naming it
        (a plug-in's bug must not look like a refusal, nor like an internal error)."""
        params = workflow.params_for(record.enrollment.profile, ref)
        try:
            verdict = self._specs[ref.name](record, params)
        except PathwayError:
            raise
        except Exception as exc:
            raise GuardError(
                f"guard {ref.name} failed for {record.enrollment.patient} ({type(exc).__name__}): "
                "a fault in the guard's code, not a clinical refusal; nothing was changed"
            ) from exc
        if not isinstance(verdict, Verdict):
            raise GuardError(
                f"guard {ref.name} returned {type(verdict).__name__}, not a Verdict: a fault in the "
                "guard's code; nothing was changed"
            )
        return verdict


def _load_entry_point(registry: GuardRegistry, ep_name: str, obj: Any) -> None:
    if isinstance(obj, GuardSpec):
        registry.add(obj)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            registry.add(value, name=str(key))
    elif callable(obj):
        registry.add(obj, name=ep_name)
    else:
        raise DefinitionError(
            f"entry point {ENTRY_POINT_GROUP}:{ep_name}",
            [f"expected a GuardSpec, a guard function or a mapping of them, got {type(obj).__name__}"],
        )


@cache
def installed_guards() -> GuardRegistry:
    """Every guard contributed by an installed package (cached for the process)."""
    from pathway.domain.plugins import entry_points_of

    return registry_from(entry_points_of(ENTRY_POINT_GROUP))


def registry_from(found: Iterable[Any]) -> GuardRegistry:
    """The guards of these entry points (loaded in name order); a guard name that two
    entry points define is a DefinitionError."""
    registry = GuardRegistry()
    source: dict[str, str] = {}
    for ep in sorted(found, key=lambda e: e.name):
        single = GuardRegistry()
        _load_entry_point(single, ep.name, ep.load())
        for name in single.names():
            same = name in registry and registry[name].fn is single[name].fn  # re-exported
            if name in source and source[name] != ep.value and not same:
                # A plug-in must not silently replace a clinical rule (the last loaded would win).
                raise DefinitionError(
                    f"entry point {ENTRY_POINT_GROUP}:{ep.name}",
                    [
                        f"guard {name!r} is already defined by {source[name]}; a plug-in may not "
                        "replace a guard: give it another name and use that in the workflow"
                    ],
                )
            source[name] = ep.value
            registry.add(single[name])
    return registry
