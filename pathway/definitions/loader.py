"""Loading workflow files: YAML in, a validated `Workflow` out, or every problem at once.

Problems are located the way a person reads the file, e.g.
`transitions[4].dest: unknown state 'ablaton'`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from pathway.domain.definition import (
    FIELD_TYPES,
    HELD_FROM,
    FieldSpec,
    GuardRef,
    KindSpec,
    Profile,
    StateSpec,
    TransitionSpec,
    Workflow,
    frozen_map,
)
from pathway.domain.guards import GuardRegistry
from pathway.errors import DefinitionError

MAX_FILE_BYTES = 1_000_000
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]*$")

TOP_KEYS = {
    "id",
    "version",
    "title",
    "description",
    "region",
    "roles",
    "params",
    "profiles",
    "states",
    "transitions",
    "observations",
}
STATE_KEYS = {"initial", "terminal", "hold", "planned", "sla_days", "description"}
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
FIELD_KEYS = {"type", "required", "min", "max", "values", "description"}
PROFILE_KEYS = {"default", "description", "params"}


#: libyaml's safe loader when PyYAML has it (about seven times faster: every command
#: parses the workflow files), else the pure-Python one; both build plain data only.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely (no tags, no aliases); raise DefinitionError on bad YAML.

    Aliases are refused before anything is built: workflow files never need them, and
    nested aliases can expand into gigabytes ("billion laughs")."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise DefinitionError(source, [f"file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                raise DefinitionError(
                    source, [f"not valid YAML: YAML aliases (*name) are not allowed in workflow files{where}"]
                )
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise DefinitionError(source, [f"not valid YAML: {exc}".replace("\n", " ")]) from None


def load_file(path: str | Path, guards: GuardRegistry) -> Workflow:
    """Read and validate one workflow file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(str(path), [f"cannot read: {exc}"]) from None
    return load_text(text, guards, source=str(path))


def load_text(text: str, guards: GuardRegistry, source: str = "<text>") -> Workflow:
    return build(parse_yaml(text, source), guards, source)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _str_list(value: Any, where: str, p: _Problems) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        p.add(where, "expected a list of names")
        return ()
    return tuple(value)


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], where: str, p: _Problems) -> None:
    for key in data:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            p.add(f"{prefix}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _guard_refs(value: Any, where: str, p: _Problems) -> tuple[GuardRef, ...]:
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
            _unknown_keys(item, {"name", "params"}, loc, p)
            params = item.get("params") or {}
            if not isinstance(params, dict):
                p.add(f"{loc}.params", "expected a mapping")
                params = {}
            refs.append(GuardRef(item["name"], frozen_map(params)))
        else:
            p.add(loc, "expected a guard name or {name: ..., params: {...}}")
    return tuple(refs)


def build(data: Any, guards: GuardRegistry, source: str = "<data>") -> Workflow:
    """Validate parsed YAML into a `Workflow`, or raise DefinitionError listing every problem."""
    p = _Problems()
    if not isinstance(data, dict):
        raise DefinitionError(source, ["the file must be a mapping with id, version, states, ..."])
    _unknown_keys(data, TOP_KEYS, "", p)

    wf_id = data.get("id")
    if not isinstance(wf_id, str) or not WORKFLOW_ID.match(wf_id):
        p.add("id", "required: lower-case letters, digits and '-' (e.g. cervical-neurotomy)")
        wf_id = str(wf_id)
    version = data.get("version")
    if not _is_int(version) or version < 1:
        p.add("version", "required: a whole number >= 1")
        version = 0
    title = data.get("title") or wf_id
    if not isinstance(title, str):
        p.add("title", "expected text")
        title = wf_id

    region_name, levels = _region(data.get("region"), p)
    roles = _str_list(data.get("roles", []), "roles", p)
    if not roles:
        p.add("roles", "required: the roles that act in this pathway")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        p.add("params", "expected a mapping of parameter names to values")
        params = {}

    states = _states(data.get("states"), p)
    kinds = _kinds(data.get("observations"), roles, levels, guards, p)
    transitions = _transitions(data.get("transitions"), states, roles, p)
    profiles, default_profile = _profiles(data.get("profiles"), params, p)

    _check_guards(transitions, kinds, params, profiles, guards, p)
    _check_graph(states, transitions, p)

    if p.items:
        raise DefinitionError(source, p.items)
    return Workflow(
        id=wf_id,
        version=int(version),
        title=title,
        description=str(data.get("description") or ""),
        region=region_name,
        levels=levels,
        roles=roles,
        params=frozen_map(params),
        states=frozen_map(states),
        transitions=transitions,
        kinds=frozen_map(kinds),
        profiles=frozen_map(profiles),
        default_profile=default_profile,
        source=source,
    )


def _region(value: Any, p: _Problems) -> tuple[str, tuple[str, ...]]:
    if value is None:
        return "", ()
    if not isinstance(value, dict):
        p.add("region", "expected {name: ..., levels: [...]}")
        return "", ()
    _unknown_keys(value, {"name", "levels"}, "region", p)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        p.add("region.name", "required: the region (e.g. cervical)")
        name = ""
    levels = _str_list(value.get("levels", []), "region.levels", p)
    return name, levels


def _states(value: Any, p: _Problems) -> dict[str, StateSpec]:
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
            p.add(loc, "expected a mapping (initial, terminal, hold, planned, sla_days, description)")
            continue
        _unknown_keys(spec, STATE_KEYS, loc, p)
        sla = spec.get("sla_days")
        if sla is not None and (not _is_int(sla) or sla < 1):
            p.add(f"{loc}.sla_days", "expected a whole number of days >= 1")
            sla = None
        for flag in ("initial", "terminal", "hold", "planned"):
            if flag in spec and not isinstance(spec[flag], bool):
                p.add(f"{loc}.{flag}", "expected true or false")
        state = StateSpec(
            name=name,
            terminal=spec.get("terminal") is True,
            initial=spec.get("initial") is True,
            hold=spec.get("hold") is True,
            planned=spec.get("planned") is True,
            sla_days=sla,
            description=str(spec.get("description") or ""),
        )
        if state.terminal and (state.initial or state.hold):
            p.add(loc, "a terminal state cannot be initial or a hold")
        if state.planned and (state.terminal or state.hold):
            p.add(f"{loc}.planned", "only an active state can be planned (not a terminal or hold state)")
        states[name] = state
    initials = [s.name for s in states.values() if s.initial]
    if len(initials) != 1:
        p.add("states", f"exactly one state must be initial (found {len(initials)})")
    if not any(s.terminal for s in states.values()):
        p.add("states", "at least one state must be terminal")
    return states


def _transitions(
    value: Any, states: Mapping[str, StateSpec], roles: tuple[str, ...], p: _Problems
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
        _unknown_keys(item, TRANSITION_KEYS, loc, p)
        trigger = item.get("trigger")
        if not isinstance(trigger, str) or not NAME.match(trigger):
            p.add(f"{loc}.trigger", "required: a lower_snake_case trigger name")
            continue
        loc = f"transitions[{i}] ({trigger})"
        raw_source = item.get("source")
        if raw_source == "*":
            sources = tuple(active)
        else:
            sources = _str_list(raw_source, f"{loc}.source", p)
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
        exclude = _str_list(item.get("exclude", []), f"{loc}.exclude", p)
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
        t_roles = _str_list(item.get("roles", list(roles)), f"{loc}.roles", p)
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
                guards=_guard_refs(item.get("guards"), f"{loc}.guards", p),
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


def _field(name: str, spec: Any, loc: str, levels: tuple[str, ...], p: _Problems) -> FieldSpec | None:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        p.add(loc, "expected {type: ..., ...}")
        return None
    _unknown_keys(spec, FIELD_KEYS, loc, p)
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        p.add(f"{loc}.type", f"unknown type {ftype!r} (types: {', '.join(FIELD_TYPES)})")
        return None
    values: tuple[str, ...] = ()
    if ftype in ("enum", "list"):
        values = _str_list(spec.get("values"), f"{loc}.values", p)
        if not values:
            p.add(f"{loc}.values", f"required for type {ftype}")
    elif ftype == "levels":
        values = levels
        if not levels:
            p.add(loc, "type levels needs region.levels")
    lo, hi = spec.get("min"), spec.get("max")
    for key, bound in (("min", lo), ("max", hi)):
        if bound is not None and (ftype not in ("int", "number") or not _is_num(bound)):
            p.add(f"{loc}.{key}", "only int and number fields take a numeric min/max")
    if _is_num(lo) and _is_num(hi) and lo > hi:
        p.add(loc, f"min {lo} is above max {hi}")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        p.add(f"{loc}.required", "expected true or false")
        required = True
    return FieldSpec(
        name=name,
        type=ftype,
        required=required,
        minimum=float(lo) if _is_num(lo) else None,
        maximum=float(hi) if _is_num(hi) else None,
        values=values,
        description=str(spec.get("description") or ""),
    )


def _kinds(
    value: Any,
    roles: tuple[str, ...],
    levels: tuple[str, ...],
    guards: GuardRegistry,
    p: _Problems,
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
        _unknown_keys(spec, KIND_KEYS, loc, p)
        k_roles = _str_list(spec.get("roles", list(roles)), f"{loc}.roles", p)
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
        refs = _guard_refs(spec.get("guards"), f"{loc}.guards", p)
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


def _profiles(value: Any, params: Mapping[str, Any], p: _Problems) -> tuple[dict[str, Profile], str]:
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
        _unknown_keys(spec, PROFILE_KEYS, loc, p)
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


def _check_guards(
    transitions: Iterable[TransitionSpec],
    kinds: Mapping[str, KindSpec],
    params: Mapping[str, Any],
    profiles: Mapping[str, Profile],
    guards: GuardRegistry,
    p: _Problems,
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


def _check_graph(
    states: Mapping[str, StateSpec], transitions: tuple[TransitionSpec, ...], p: _Problems
) -> None:
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
