"""Loading workflow files: YAML in, a validated `Workflow` out, or every problem at once.

Problems are located the way a person reads the file, e.g.
`transitions[4].dest: unknown state 'ablaton'`. The parts of the file are read by
`parts`, the sections for reports and exports by `sections`, the static checks are
`checks`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pathway.definitions import checks, parts
from pathway.definitions.problems import Problems, is_int, sane_numbers, str_list, unknown_keys
from pathway.definitions.sections import SECTION_KEYS, declarations
from pathway.domain.definition import Workflow, frozen_map
from pathway.domain.guards import GuardRegistry
from pathway.errors import DefinitionError

MAX_FILE_BYTES = 1_000_000
MAX_VERSION = 1_000_000
WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{0,99}$")

TOP_KEYS = {
    "id",
    "version",
    "title",
    "description",
    "default",
    "region",
    "roles",
    "params",
    "profiles",
    "states",
    "transitions",
    "observations",
    *SECTION_KEYS,
}


#: libyaml's safe loader when PyYAML has it (about seven times faster: every command
#: parses the workflow files), else the pure-Python one; both build plain data only.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely (no tags, no aliases, no key given twice in a mapping); raise
    DefinitionError on bad YAML.

    Aliases are refused before anything is built: workflow files never need them, and
    nested aliases can expand into gigabytes ("billion laughs"). A key given twice would
    silently keep the last value (PyYAML's way), so a pasted-over section would win."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise DefinitionError(source, [f"file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        problems = _scan(yaml.parse(text, Loader=_LOADER))
        if problems:
            raise DefinitionError(source, problems)
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise DefinitionError(source, [f"not valid YAML: {exc}".replace("\n", " ")]) from None


def _where(event: Any) -> str:
    mark = event.start_mark
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


def _scan(events: Any) -> list[str]:
    """Aliases and keys given twice, from the parser's events (before anything is built)."""
    problems: list[str] = []
    stack: list[list[Any]] = []  # per open collection: [keys seen, the next node is a key] or []
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            return [f"not valid YAML: YAML aliases (*name) are not allowed in workflow files{_where(event)}"]
        if isinstance(event, yaml.ScalarEvent | yaml.MappingStartEvent | yaml.SequenceStartEvent):
            top = stack[-1] if stack else None
            if top:  # inside a mapping
                if top[1] and isinstance(event, yaml.ScalarEvent):
                    if event.value in top[0]:
                        problems.append(f"key {event.value!r} is given twice in one mapping{_where(event)}")
                    top[0].add(event.value)
                top[1] = not top[1]
            if isinstance(event, yaml.MappingStartEvent):
                stack.append([set(), True])
            elif isinstance(event, yaml.SequenceStartEvent):
                stack.append([])
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
    return problems


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


def build(data: Any, guards: GuardRegistry, source: str = "<data>") -> Workflow:
    """Validate parsed YAML into a `Workflow`, or raise DefinitionError listing every problem."""
    p = Problems()
    if not isinstance(data, dict):
        raise DefinitionError(source, ["the file must be a mapping with id, version, states, ..."])
    unknown_keys(data, TOP_KEYS, "", p)

    wf_id = data.get("id")
    if not isinstance(wf_id, str) or not WORKFLOW_ID.match(wf_id):
        p.add("id", "required: lower-case letters, digits and '-' (e.g. cervical-neurotomy)")
        wf_id = str(wf_id)
    version = data.get("version")
    if not is_int(version) or not 1 <= version <= MAX_VERSION:
        p.add("version", f"required: a whole number from 1 to {MAX_VERSION}")
        version = 0
    title = data.get("title") or wf_id
    if not isinstance(title, str):
        p.add("title", "expected text")
        title = wf_id
    default = data.get("default", False)
    if not isinstance(default, bool):
        p.add("default", "expected true or false")

    region_name, levels = parts.region(data.get("region"), p)
    roles = str_list(data.get("roles", []), "roles", p)
    if not roles:
        p.add("roles", "required: the roles that act in this pathway")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        p.add("params", "expected a mapping of parameter names to values")
        params = {}
    sane_numbers(params, "params", p)
    sane_numbers(data.get("profiles"), "profiles", p)
    sane_numbers(data.get("observations"), "observations", p)

    states = parts.states(data.get("states"), p)
    kinds = parts.kinds(data.get("observations"), roles, levels, guards, p)
    transitions = parts.transitions(data.get("transitions"), states, roles, p)
    profiles, default_profile = parts.profiles(data.get("profiles"), params, p)
    declared = declarations(data, states, transitions, kinds, p, tuple(roles))

    checks.guards_defined(transitions, kinds, params, profiles, guards, p)
    checks.graph(states, transitions, p)

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
        default=default is True,
        declarations=declared,
    )
