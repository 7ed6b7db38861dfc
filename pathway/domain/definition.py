"""Workflow definitions: typed, immutable, loaded from YAML by `pathway.definitions.loader`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pathway.domain.declarations import Declarations

#: A transition whose dest is this returns to the state the hold came from.
HELD_FROM = "@held_from"

FIELD_TYPES = ("int", "number", "bool", "date", "text", "enum", "list", "levels")


def frozen_map(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class FieldSpec:
    """One field of an observation kind."""

    name: str
    type: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    description: str = ""
    #: A date field that may be later than the observation's day (a planned date).
    future: bool = False

    def describe(self) -> str:
        """What values are allowed, in words, for help and error messages."""
        if self.type in ("int", "number"):
            word = "whole number" if self.type == "int" else "number"
            if self.minimum is not None and self.maximum is not None:
                return f"a {word} {_num(self.minimum)}-{_num(self.maximum)}"
            if self.minimum is not None:
                return f"a {word} >= {_num(self.minimum)}"
            return f"a {word}"
        if self.type == "bool":
            return "true or false"
        if self.type == "date":
            return "an ISO date (YYYY-MM-DD)"
        if self.type == "text":
            return "text"
        if self.type == "enum":
            return "one of " + ", ".join(self.values)
        if self.type == "levels":
            return "one or more of " + ", ".join(self.values) + " (comma-separated)"
        return "a comma-separated list of " + ", ".join(self.values) + " (may be empty)"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class GuardRef:
    """A guard named by a transition or kind, with parameters that override the workflow's."""

    name: str
    params: Mapping[str, Any] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class KindSpec:
    """An observation kind: its fields, who may record it, and checks run when it is recorded."""

    name: str
    fields: Mapping[str, FieldSpec]
    roles: tuple[str, ...]
    guards: tuple[GuardRef, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class StateSpec:
    name: str
    terminal: bool = False
    initial: bool = False
    hold: bool = False
    sla_days: int | None = None
    description: str = ""
    #: Time here is planned care (recovery, follow-up), not waiting: reports list it but
    #: do not name it as the bottleneck.
    planned: bool = False
    #: A stage patients may skip (imaging): the funnel leaves it out of its chain.
    optional: bool = False
    #: A terminal state that means care completed as planned (FHIR `finished`, the end of
    #: the funnel), as opposed to one that ended it otherwise.
    completed: bool = False


@dataclass(frozen=True)
class TransitionSpec:
    """One transition: `dest` is `HELD_FROM` for a return from a hold."""

    trigger: str
    sources: tuple[str, ...]
    dest: str
    roles: tuple[str, ...]
    guards: tuple[GuardRef, ...] = ()
    reason_required: bool = False
    description: str = ""
    auto: bool = False  # applied by `sweep` whenever its guards pass

    @property
    def returns_from_hold(self) -> bool:
        return self.dest == HELD_FROM


@dataclass(frozen=True)
class Profile:
    """A payer profile: a named parameter set overriding the workflow's defaults."""

    name: str
    params: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Workflow:
    """A validated pathway definition, pinned by (id, version)."""

    id: str
    version: int
    title: str
    region: str
    levels: tuple[str, ...]
    roles: tuple[str, ...]
    params: Mapping[str, Any]
    states: Mapping[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    kinds: Mapping[str, KindSpec]
    profiles: Mapping[str, Profile]
    default_profile: str
    description: str = ""
    source: str = ""
    #: The pathway commands use when none is named (simulate, a FHIR referral without one).
    default: bool = False
    #: The rtt, outcome, follow_up, worklist, fhir and simulation sections.
    declarations: Declarations = field(default_factory=Declarations)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    @property
    def initial(self) -> str:
        return next(s.name for s in self.states.values() if s.initial)

    def state(self, name: str) -> StateSpec:
        return self.states[name]

    def is_terminal(self, name: str) -> bool:
        return self.states[name].terminal

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger name, in file order."""
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def transitions_from(self, state: str) -> tuple[TransitionSpec, ...]:
        return tuple(t for t in self.transitions if state in t.sources)

    def triggers_from(self, state: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger for t in self.transitions_from(state)))

    def params_for(self, profile: str, ref: GuardRef | None = None) -> Mapping[str, Any]:
        """Parameters a guard sees: workflow defaults, then the guard's own, then the profile's."""
        merged = dict(self.params)
        if ref is not None:
            merged.update(ref.params)
        merged.update(self.profiles[profile].params)
        return MappingProxyType(merged)
