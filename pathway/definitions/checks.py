"""The static checks of a workflow: every guard named exists and finds the kinds, fields and
parameters it reads; no state is unreachable; no active state is a dead end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pathway.definitions.problems import Problems
from pathway.domain.definition import GuardRef, KindSpec, Profile, StateSpec, TransitionSpec
from pathway.domain.guards import GuardRegistry


def guards_defined(
    transitions: Iterable[TransitionSpec],
    kinds: Mapping[str, KindSpec],
    params: Mapping[str, Any],
    profiles: Mapping[str, Profile],
    guards: GuardRegistry,
    p: Problems,
) -> None:
    """Every named guard exists, and the kinds, fields and parameters it reads are defined."""
    refs: list[tuple[str, GuardRef]] = []
    for i, t in enumerate(transitions):
        refs += [(f"transitions[{i}] ({t.trigger}).guards[{j}]", g) for j, g in enumerate(t.guards)]
    for spec_kind in kinds.values():
        refs += [(f"observations.{spec_kind.name}.guards[{j}]", g) for j, g in enumerate(spec_kind.guards)]
    for loc, ref in refs:
        if ref.name not in guards:
            known = ", ".join(guards.names()) or "none installed"
            p.add(loc, f"unknown guard {ref.name!r} (known: {known})")
            continue
        spec = guards[ref.name]
        for kind, fields in spec.reads.items():
            if kind not in kinds:
                p.add(loc, f"guard {ref.name!r} reads observation kind {kind!r}, which is not defined")
                continue
            for f in fields:
                if f not in kinds[kind].fields:
                    p.add(loc, f"guard {ref.name!r} reads unknown field {kind}.{f}")
        for name in spec.params:
            if name not in params and name not in ref.params:
                missing = [pr.name for pr in profiles.values() if name not in pr.params]
                if missing:
                    p.add(loc, f"guard {ref.name!r} needs parameter {name!r}: add it to params")


def graph(states: Mapping[str, StateSpec], transitions: tuple[TransitionSpec, ...], p: Problems) -> None:
    """Refuse unreachable states and non-terminal states with no way out."""
    if not states:
        return
    outgoing: dict[str, set[str]] = {s: set() for s in states}
    for t in transitions:
        for s in t.sources:
            if t.returns_from_hold:
                # A return goes back to whichever state the hold was entered from.
                outgoing[s] |= {src for h in transitions if h.dest == s for src in h.sources}
            elif t.dest in states:
                outgoing[s].add(t.dest)
    initial = [s.name for s in states.values() if s.initial]
    if initial:
        seen = {initial[0]}
        stack = [initial[0]]
        while stack:
            for nxt in outgoing[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        for name in states:
            if name not in seen:
                p.add(f"states.{name}", f"unreachable from the initial state {initial[0]!r}")
    for name, state in states.items():
        if not state.terminal and not any(name in t.sources for t in transitions):
            p.add(f"states.{name}", "not terminal but no transition leaves it (a dead end)")
