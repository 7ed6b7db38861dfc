"""The parts of a workflow file: region, states, transitions, observation kinds and their
fields, payer profiles. Each reader returns what it could build and adds every problem,
located as a person reads the file (`transitions[4].dest: unknown state 'ablaton'`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pathway.definitions.problems import MAX_INT, Problems, is_int, is_num, str_list, unknown_keys
from pathway.domain.definition import (
    FIELD_TYPES,
    HELD_FROM,
    FieldSpec,
    GuardRef,
    KindSpec,
    Profile,
    StateSpec,
    TransitionSpec,
    frozen_map,
)
from pathway.domain.guards import GuardRegistry

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
STATE_KEYS = {"initial", "terminal", "hold", "planned", "optional", "completed", "sla_days", "description"}
TRANSITION_KEYS = {
    "trigger",
    "auto",
    "source",
    "exclude",
    "dest",
    "roles",
    "guards",
    "reason",
    "description",
}
KIND_KEYS = {"roles", "fields", "guards", "description"}
FIELD_KEYS = {"type", "required", "min", "max", "values", "description", "future"}
PROFILE_KEYS = {"default", "description", "params"}


def guard_refs(value: Any, where: str, p: Problems) -> tuple[GuardRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(where, "expected a list of guard names or {name: ..., params: {...}}")
        return ()
    refs: list[GuardRef] = []
    for i, item in enumerate(value):
        loc = f"{where}[{i}]"
        if isinstance(item, str):
            refs.append(GuardRef(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            unknown_keys(item, {"name", "params"}, loc, p)
            params = item.get("params") or {}
            if not isinstance(params, dict):
                p.add(f"{loc}.params", "expected a mapping")
                params = {}
            refs.append(GuardRef(item["name"], frozen_map(params)))
        else:
            p.add(loc, "expected a guard name or {name: ..., params: {...}}")
    return tuple(refs)


def region(value: Any, p: Problems) -> tuple[str, tuple[str, ...]]:
    if value is None:
        return "", ()
    if not isinstance(value, dict):
        p.add("region", "expected {name: ..., levels: [...]}")
        return "", ()
    unknown_keys(value, {"name", "levels"}, "region", p)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        p.add("region.name", "required: the region (e.g. cervical)")
        name = ""
    levels = str_list(value.get("levels", []), "region.levels", p)
    return name, levels


def states(value: Any, p: Problems) -> dict[str, StateSpec]:
    if not isinstance(value, dict) or not value:
        p.add("states", "required: a mapping of state names to their settings")
        return {}
    states: dict[str, StateSpec] = {}
    for name, spec in value.items():
        loc = f"states.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            p.add(loc, "state names are lower_snake_case")
            continue
        spec = spec or {}
        if not isinstance(spec, dict):
            p.add(loc, f"expected a mapping ({', '.join(sorted(STATE_KEYS))})")
            continue
        unknown_keys(spec, STATE_KEYS, loc, p)
        sla = spec.get("sla_days")
        if sla is not None and (not is_int(sla) or not 1 <= sla <= MAX_INT):
            p.add(f"{loc}.sla_days", f"expected a whole number of days from 1 to {MAX_INT}")
            sla = None
        for flag in ("initial", "terminal", "hold", "planned", "optional", "completed"):
            if flag in spec and not isinstance(spec[flag], bool):
                p.add(f"{loc}.{flag}", "expected true or false")
        state = StateSpec(
            name=name,
            terminal=spec.get("terminal") is True,
            initial=spec.get("initial") is True,
            hold=spec.get("hold") is True,
            planned=spec.get("planned") is True,
            optional=spec.get("optional") is True,
            completed=spec.get("completed") is True,
            sla_days=sla,
            description=str(spec.get("description") or ""),
        )
        if state.terminal and (state.initial or state.hold):
            p.add(loc, "a terminal state cannot be initial or a hold")
        if state.planned and (state.terminal or state.hold):
            p.add(f"{loc}.planned", "only an active state can be planned (not a terminal or hold state)")
        if state.optional and (state.terminal or state.hold or state.initial):
            p.add(f"{loc}.optional", "only an active stage after the first can be optional")
        if state.completed and not state.terminal:
            p.add(f"{loc}.completed", "only a terminal state can complete the pathway")
        states[name] = state
    initials = [s.name for s in states.values() if s.initial]
    if len(initials) != 1:
        p.add("states", f"exactly one state must be initial (found {len(initials)})")
    if not any(s.terminal for s in states.values()):
        p.add("states", "at least one state must be terminal")
    return states


def transitions(
    value: Any, states: Mapping[str, StateSpec], roles: tuple[str, ...], p: Problems
) -> tuple[TransitionSpec, ...]:
    if not isinstance(value, list) or not value:
        p.add("transitions", "required: a list of transitions")
        return ()
    active = [s.name for s in states.values() if not s.terminal]
    result: list[TransitionSpec] = []
    for i, item in enumerate(value):
        loc = f"transitions[{i}]"
        if not isinstance(item, dict):
            p.add(loc, "expected a mapping with trigger, source, dest")
            continue
        unknown_keys(item, TRANSITION_KEYS, loc, p)
        trigger = item.get("trigger")
        if not isinstance(trigger, str) or not NAME.match(trigger):
            p.add(f"{loc}.trigger", "required: a lower_snake_case trigger name")
            continue
        loc = f"transitions[{i}] ({trigger})"
        raw_source = item.get("source")
        if raw_source == "*":
            sources = tuple(active)
        else:
            sources = str_list(raw_source, f"{loc}.source", p)
            if not sources:
                p.add(
                    f"{loc}.source",
                    "required: a state, a list of states, or '*' (every active state)",
                )
        for s in sources:
            if s not in states:
                p.add(f"{loc}.source", f"unknown state {s!r}")
            elif states[s].terminal:
                p.add(f"{loc}.source", f"{s!r} is terminal: nothing leaves a terminal state")
        exclude = str_list(item.get("exclude", []), f"{loc}.exclude", p)
        for s in exclude:
            if s not in states:
                p.add(f"{loc}.exclude", f"unknown state {s!r}")
        sources = tuple(s for s in sources if s not in exclude and s in states)
        dest = item.get("dest")
        if not isinstance(dest, str):
            p.add(f"{loc}.dest", f"required: a state name or {HELD_FROM}")
            continue
        if dest == HELD_FROM:
            for s in sources:
                if not states[s].hold:
                    p.add(f"{loc}.dest", f"{HELD_FROM} can only leave a hold state, not {s!r}")
        elif dest not in states:
            p.add(f"{loc}.dest", f"unknown state {dest!r}")
        t_roles = str_list(item.get("roles", list(roles)), f"{loc}.roles", p)
        for r in t_roles:
            if r not in roles:
                p.add(f"{loc}.roles", f"unknown role {r!r} (roles: {', '.join(roles)})")
        auto = item.get("auto", False)
        if not isinstance(auto, bool):
            p.add(f"{loc}.auto", "expected true or false")
            auto = False
        reason = item.get("reason", "optional")
        if reason not in ("required", "optional"):
            p.add(f"{loc}.reason", "expected 'required' or 'optional'")
        result.append(
            TransitionSpec(
                trigger=trigger,
                sources=sources,
                dest=dest,
                roles=t_roles,
                guards=guard_refs(item.get("guards"), f"{loc}.guards", p),
                reason_required=reason == "required",
                description=str(item.get("description") or ""),
                auto=auto,
            )
        )
    # Two transitions for one trigger from one state need guards that tell them apart.
    seen: dict[tuple[str, str], tuple[int, frozenset[str]]] = {}
    for i, t in enumerate(result):
        names = frozenset(g.name for g in t.guards)
        for s in t.sources:
            key = (t.trigger, s)
            if key in seen and seen[key][1] == names:
                p.add(
                    f"transitions[{i}] ({t.trigger})",
                    f"ambiguous: transitions[{seen[key][0]}] also fires {t.trigger!r} from {s!r} "
                    "with the same guards",
                )
            seen.setdefault(key, (i, names))
    return tuple(result)


def _field(name: str, spec: Any, loc: str, levels: tuple[str, ...], p: Problems) -> FieldSpec | None:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        p.add(loc, "expected {type: ..., ...}")
        return None
    unknown_keys(spec, FIELD_KEYS, loc, p)
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        p.add(f"{loc}.type", f"unknown type {ftype!r} (types: {', '.join(FIELD_TYPES)})")
        return None
    values: tuple[str, ...] = ()
    if ftype in ("enum", "list"):
        values = str_list(spec.get("values"), f"{loc}.values", p)
        if not values:
            p.add(f"{loc}.values", f"required for type {ftype}")
    elif ftype == "levels":
        values = levels
        if not levels:
            p.add(loc, "type levels needs region.levels")
    lo, hi = spec.get("min"), spec.get("max")
    for key, bound in (("min", lo), ("max", hi)):
        if bound is not None and (ftype not in ("int", "number") or not is_num(bound)):
            p.add(f"{loc}.{key}", "only int and number fields take a numeric min/max")
    if is_num(lo) and is_num(hi) and lo > hi:
        p.add(loc, f"min {lo} is above max {hi}")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        p.add(f"{loc}.required", "expected true or false")
        required = True
    future = spec.get("future", False)
    if not isinstance(future, bool) or (future and ftype != "date"):
        p.add(f"{loc}.future", "only a date field takes future: true or false")
        future = False
    return FieldSpec(
        name=name,
        type=ftype,
        required=required,
        minimum=float(lo) if is_num(lo) else None,
        maximum=float(hi) if is_num(hi) else None,
        values=values,
        description=str(spec.get("description") or ""),
        future=future,
    )


def kinds(
    value: Any,
    roles: tuple[str, ...],
    levels: tuple[str, ...],
    guards: GuardRegistry,
    p: Problems,
) -> dict[str, KindSpec]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add("observations", "expected a mapping of kind names to {roles, fields}")
        return {}
    kinds: dict[str, KindSpec] = {}
    for name, spec in value.items():
        loc = f"observations.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            p.add(loc, "kind names are lower_snake_case")
            continue
        if not isinstance(spec, dict):
            p.add(loc, "expected {roles: [...], fields: {...}}")
            continue
        unknown_keys(spec, KIND_KEYS, loc, p)
        k_roles = str_list(spec.get("roles", list(roles)), f"{loc}.roles", p)
        for r in k_roles:
            if r not in roles:
                p.add(f"{loc}.roles", f"unknown role {r!r} (roles: {', '.join(roles)})")
        raw_fields = spec.get("fields")
        fields: dict[str, FieldSpec] = {}
        if not isinstance(raw_fields, dict) or not raw_fields:
            p.add(f"{loc}.fields", "required: a mapping of field names to {type: ...}")
        else:
            for fname, fspec in raw_fields.items():
                if not isinstance(fname, str) or not NAME.match(fname):
                    p.add(f"{loc}.fields.{fname}", "field names are lower_snake_case")
                    continue
                built = _field(fname, fspec, f"{loc}.fields.{fname}", levels, p)
                if built is not None:
                    fields[fname] = built
        refs = guard_refs(spec.get("guards"), f"{loc}.guards", p)
        for i, ref in enumerate(refs):
            if ref.name not in guards:
                p.add(f"{loc}.guards[{i}]", f"unknown guard {ref.name!r}")
        kinds[name] = KindSpec(
            name=name,
            fields=frozen_map(fields),
            roles=k_roles,
            guards=refs,
            description=str(spec.get("description") or ""),
        )
    return kinds


def profiles(value: Any, params: Mapping[str, Any], p: Problems) -> tuple[dict[str, Profile], str]:
    if value is None:
        return {"default": Profile("default", frozen_map())}, "default"
    if not isinstance(value, dict) or not value:
        p.add("profiles", "expected a mapping of profile names to {params: {...}}")
        return {"default": Profile("default", frozen_map())}, "default"
    profiles: dict[str, Profile] = {}
    defaults: list[str] = []
    for name, spec in value.items():
        loc = f"profiles.{name}"
        spec = spec or {}
        if not isinstance(spec, dict):
            p.add(loc, "expected {default, description, params}")
            continue
        unknown_keys(spec, PROFILE_KEYS, loc, p)
        prof_params = spec.get("params") or {}
        if not isinstance(prof_params, dict):
            p.add(f"{loc}.params", "expected a mapping")
            prof_params = {}
        for key in prof_params:
            if key not in params:
                p.add(f"{loc}.params.{key}", "not a parameter of this workflow (add it to params)")
        if spec.get("default") is True:
            defaults.append(str(name))
        profiles[str(name)] = Profile(str(name), frozen_map(prof_params), str(spec.get("description") or ""))
    if len(defaults) > 1:
        p.add("profiles", f"only one profile may be the default (found {', '.join(defaults)})")
    default = defaults[0] if defaults else next(iter(profiles), "default")
    return profiles, default
