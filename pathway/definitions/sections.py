"""Loading the sections a workflow file declares for reports, the worklist, FHIR,
simulation and reopening (`rtt`, `outcome`, `follow_up`, `worklist`, `fhir`,
`simulation`, `reopen`).

Each name a section uses (a state, trigger, observation kind or field) must exist in
the same file, and a score must be a numeric field, so a typo is a load error, not a
report that silently counts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pathway.definitions.problems import Problems, number, str_list, text, unknown_keys, whole
from pathway.domain.declarations import (
    Coding,
    Declarations,
    FhirMapping,
    FollowUpSchedule,
    OutcomeMeasure,
    ProcedureCodes,
    Reopen,
    RttClock,
    Score,
    SecondaryMeasure,
    Simulation,
    WorklistPolicy,
)
from pathway.domain.definition import KindSpec, StateSpec, TransitionSpec, frozen_map

SECTION_KEYS = {"rtt", "outcome", "follow_up", "worklist", "fhir", "simulation", "reopen"}

#: Code systems a workflow file may name by a short name.
CODE_SYSTEMS = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "pathway": "pathway",  # the engine's own code system (its URL is set at export)
}


class _Names:
    """What the rest of the file defines, for the sections to refer to."""

    def __init__(
        self,
        states: Mapping[str, StateSpec],
        transitions: tuple[TransitionSpec, ...],
        kinds: Mapping[str, KindSpec],
        p: Problems,
    ) -> None:
        self.states, self.kinds, self.p = states, kinds, p
        self.triggers = {t.trigger for t in transitions}

    def state(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in self.states:
            self.p.add(where, f"unknown state {value!r}")
            return ""
        return value

    def state_list(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(self.state(s, where) for s in str_list(value, where, self.p))

    def trigger(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in self.triggers:
            self.p.add(where, f"unknown trigger {value!r}")
            return ""
        return value

    def kind(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in self.kinds:
            self.p.add(where, f"unknown observation kind {value!r}")
            return ""
        return value

    def numeric_field(self, kind: str, value: Any, where: str) -> str:
        fields = self.kinds[kind].fields if kind in self.kinds else {}
        if not isinstance(value, str) or (kind and value not in fields):
            self.p.add(where, f"unknown field {value!r} of {kind or 'the kind'}")
            return ""
        if kind and fields[value].type not in ("int", "number"):
            self.p.add(where, f"{kind}.{value} is not a number (a score must be int or number)")
        return value

    def score(self, value: Any, where: str) -> Score:
        if not isinstance(value, dict):
            self.p.add(where, "expected {kind: ..., field: ...}")
            return Score("", "")
        unknown_keys(value, {"kind", "field"}, where, self.p)
        kind = self.kind(value.get("kind"), f"{where}.kind")
        return Score(kind, self.numeric_field(kind, value.get("field"), f"{where}.field"))


def _mapping(value: Any, where: str, keys: set[str], p: Problems) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        p.add(where, f"expected a mapping ({', '.join(sorted(keys))})")
        return None
    unknown_keys(value, keys, where, p)
    return value


def _rtt(value: Any, n: _Names) -> RttClock | None:
    keys = {"start", "stop_triggers", "stop_states", "standard_weeks", "target_pct", "at_risk_weeks"}
    data = _mapping(value, "rtt", keys, n.p)
    if data is None:
        return None
    start = n.state(data.get("start"), "rtt.start")
    if start and n.states[start].terminal:
        n.p.add("rtt.start", f"{start!r} is terminal: the clock cannot start there")
    stop_triggers = tuple(
        n.trigger(t, "rtt.stop_triggers") for t in str_list(data.get("stop_triggers", []), "rtt", n.p)
    )
    stop_states = n.state_list(data.get("stop_states", []), "rtt.stop_states")
    if not stop_triggers and not stop_states:
        n.p.add("rtt", "give stop_triggers (the treatment) or stop_states (decisions not to treat)")
    standard = whole(data.get("standard_weeks", 18), "rtt.standard_weeks", n.p, low=1, high=520) or 18
    at_risk = whole(data.get("at_risk_weeks", max(standard - 2, 0)), "rtt.at_risk_weeks", n.p, high=520)
    if at_risk is not None and at_risk > standard:
        n.p.add("rtt.at_risk_weeks", f"{at_risk} is after the {standard}-week standard")
    target = number(data.get("target_pct", 92), "rtt.target_pct", n.p, low=0, high=100)
    return RttClock(
        start=start,
        stop_triggers=stop_triggers,
        stop_states=stop_states,
        standard_weeks=standard,
        target_pct=92.0 if target is None else target,
        at_risk_weeks=at_risk if at_risk is not None else standard,
    )


def _outcome(value: Any, n: _Names) -> OutcomeMeasure | None:
    keys = {
        "treatment",
        "measure",
        "baseline",
        "success_relief_pct",
        "window_days",
        "target_day",
        "label",
        "secondary",
        "repeat",
    }
    data = _mapping(value, "outcome", keys, n.p)
    if data is None:
        return None
    measure = n.score(data.get("measure"), "outcome.measure")
    baseline = n.score(data.get("baseline"), "outcome.baseline")
    window = data.get("window_days")
    low = high = 0
    if not (isinstance(window, list) and len(window) == 2):
        n.p.add("outcome.window_days", "expected [first day, last day] after the treatment")
    else:
        low = whole(window[0], "outcome.window_days[0]", n.p, high=3650) or 0
        high = whole(window[1], "outcome.window_days[1]", n.p, high=3650) or 0
        if low > high:
            n.p.add("outcome.window_days", f"the window begins ({low}) after it ends ({high})")
    target = whole(data.get("target_day", (low + high) // 2), "outcome.target_day", n.p, high=3650)
    if target is not None and not low <= target <= high:
        n.p.add("outcome.target_day", f"day {target} is outside the window {low}-{high}")
    secondary = None
    raw = _mapping(
        data.get("secondary"),
        "outcome.secondary",
        {"field", "baseline_field", "label", "meaningful_change"},
        n.p,
    )
    if raw is not None:
        field = n.numeric_field(measure.kind, raw.get("field"), "outcome.secondary.field")
        secondary = SecondaryMeasure(
            field=field,
            baseline_field=n.numeric_field(
                baseline.kind, raw.get("baseline_field", field), "outcome.secondary.baseline_field"
            ),
            label=text(raw.get("label", field), "outcome.secondary.label", n.p) or field,
            meaningful_change=number(
                raw.get("meaningful_change", 0), "outcome.secondary.meaningful_change", n.p, low=0, high=1e6
            )
            or 0.0,
        )
    repeat = data.get("repeat")
    return OutcomeMeasure(
        treatment=n.trigger(data.get("treatment"), "outcome.treatment"),
        measure=measure,
        baseline=baseline,
        success_relief_pct=number(
            data.get("success_relief_pct"), "outcome.success_relief_pct", n.p, low=0, high=100
        )
        or 0.0,
        window_days=(low, high),
        target_day=target if target is not None else low,
        label=text(data.get("label", f"day {low}-{high}"), "outcome.label", n.p) or f"day {low}-{high}",
        secondary=secondary,
        repeat=None if repeat is None else n.trigger(repeat, "outcome.repeat") or None,
    )


def _follow_up(value: Any, n: _Names) -> FollowUpSchedule | None:
    keys = {"after", "kind", "months", "in_states", "due_days_before", "due_days_after"}
    data = _mapping(value, "follow_up", keys, n.p)
    if data is None:
        return None
    months: list[int] = []
    raw = data.get("months")
    if not isinstance(raw, list) or not raw:
        n.p.add("follow_up.months", "expected a list of months, e.g. [3, 6, 12]")
    else:
        for i, m in enumerate(raw):
            found = whole(m, f"follow_up.months[{i}]", n.p, low=1, high=600)
            if found is not None:
                months.append(found)
        if months != sorted(set(months)):
            n.p.add("follow_up.months", "expected months in increasing order, each once")
    return FollowUpSchedule(
        after=n.trigger(data.get("after"), "follow_up.after"),
        kind=n.kind(data.get("kind"), "follow_up.kind"),
        months=tuple(months),
        in_states=n.state_list(data.get("in_states", []), "follow_up.in_states"),
        due_days_before=whole(data.get("due_days_before", 14), "follow_up.due_days_before", n.p, high=365)
        or 0,
        due_days_after=whole(data.get("due_days_after", 30), "follow_up.due_days_after", n.p, high=365) or 0,
    )


def _worklist(value: Any, n: _Names) -> WorklistPolicy:
    data = _mapping(value, "worklist", {"routine"}, n.p)
    if data is None:  # by default, planned care is routine
        return WorklistPolicy(routine=tuple(s.name for s in n.states.values() if s.planned))
    return WorklistPolicy(routine=n.state_list(data.get("routine", []), "worklist.routine"))


def _coding(value: Any, where: str, p: Problems) -> Coding | None:
    data = _mapping(value, where, {"system", "code", "display"}, p)
    if data is None:
        return None
    system = text(data.get("system"), f"{where}.system", p, required=True)
    system = CODE_SYSTEMS.get(system, system)
    if system != "pathway" and not system.startswith(("http://", "https://", "urn:")):
        p.add(f"{where}.system", f"expected a URL or one of {', '.join(CODE_SYSTEMS)}")
    code = data.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)  # a CPT code written without quotes
    return Coding(
        system=system,
        code=text(code, f"{where}.code", p, required=True),
        display=text(data.get("display"), f"{where}.display", p, required=True),
    )


def _fhir(value: Any, n: _Names) -> FhirMapping:
    data = _mapping(value, "fhir", {"scores", "codes", "procedures"}, n.p)
    if data is None:
        return FhirMapping()
    scores: dict[str, tuple[str, ...]] = {}
    for kind, names in (_mapping(data.get("scores"), "fhir.scores", set(n.kinds), n.p) or {}).items():
        where = f"fhir.scores.{kind}"
        scores[kind] = tuple(n.numeric_field(kind, f, where) for f in str_list(names, where, n.p))
    named = {f for fields in scores.values() for f in fields}
    codes: dict[str, Coding] = {}
    for name, raw in (_mapping(data.get("codes"), "fhir.codes", named, n.p) or {}).items():
        coding = _coding(raw, f"fhir.codes.{name}", n.p)
        if coding is not None:
            codes[name] = coding
    for name in sorted(named - set(codes)):
        n.p.add("fhir.codes", f"no code for score {name!r} (give system, code and display)")
    procedures: dict[str, ProcedureCodes] = {}
    raw_procedures = _mapping(data.get("procedures"), "fhir.procedures", set(n.kinds), n.p) or {}
    for kind, raw in raw_procedures.items():
        where = f"fhir.procedures.{kind}"
        spec = _mapping(raw, where, _PROCEDURE_KEYS, n.p) or {}
        side = spec.get("laterality")
        if side is not None and (not isinstance(side, str) or side not in n.kinds[kind].fields):
            n.p.add(f"{where}.laterality", f"unknown field {side!r} of {kind}")
            side = None
        procedures[kind] = ProcedureCodes(
            text=text(spec.get("text"), f"{where}.text", n.p, required=True),
            code=_coding(spec.get("code"), f"{where}.code", n.p),
            add_on=_coding(spec.get("add_on"), f"{where}.add_on", n.p),
            laterality=side,
            body_site=_template(spec.get("body_site", "{side} {level}"), f"{where}.body_site", n.p),
            performed_by=(
                n.trigger(spec["performed_by"], f"{where}.performed_by") or None
                if spec.get("performed_by") is not None
                else None
            ),
        )
    return FhirMapping(scores=frozen_map(scores), codes=frozen_map(codes), procedures=frozen_map(procedures))


_PROCEDURE_KEYS = {"text", "code", "add_on", "laterality", "body_site", "performed_by"}


def _template(value: Any, where: str, p: Problems) -> str:
    found = text(value, where, p, required=True)
    try:
        found.format(side="", level="")
    except (KeyError, IndexError, ValueError):
        p.add(where, "expected text with {level} and {side} only, e.g. '{side} {level} facet joint'")
        return "{side} {level}"
    return found


def _simulation(value: Any, p: Problems) -> Simulation | None:
    data = _mapping(value, "simulation", {"journey"}, p)
    if data is None:
        return None
    return Simulation(journey=text(data.get("journey"), "simulation.journey", p, required=True))


def _reopen(value: Any, n: _Names, roles: tuple[str, ...]) -> Reopen | None:
    data = _mapping(value, "reopen", {"trigger", "roles", "within_days"}, n.p)
    if data is None:
        return None
    trigger = text(data.get("trigger"), "reopen.trigger", n.p, required=True)
    if trigger in n.triggers:
        n.p.add("reopen.trigger", f"{trigger!r} is already a transition's trigger: give reopen its own")
    allowed = str_list(data.get("roles", list(roles)), "reopen.roles", n.p)
    for role in allowed:
        if role not in roles:
            n.p.add("reopen.roles", f"unknown role {role!r} (roles: {', '.join(roles)})")
    days = whole(data.get("within_days", 30), "reopen.within_days", n.p, low=1, high=3650) or 30
    return Reopen(trigger=trigger, roles=tuple(allowed), within_days=days)


def declarations(
    data: Mapping[str, Any],
    states: Mapping[str, StateSpec],
    transitions: tuple[TransitionSpec, ...],
    kinds: Mapping[str, KindSpec],
    p: Problems,
    roles: tuple[str, ...] = (),
) -> Declarations:
    """The sections of a parsed workflow file, each checked against the rest of the file."""
    names = _Names(states, transitions, kinds, p)
    return Declarations(
        rtt=_rtt(data.get("rtt"), names),
        outcome=_outcome(data.get("outcome"), names),
        follow_up=_follow_up(data.get("follow_up"), names),
        worklist=_worklist(data.get("worklist"), names),
        fhir=_fhir(data.get("fhir"), names),
        simulation=_simulation(data.get("simulation"), p),
        reopen=_reopen(data.get("reopen"), names, roles),
    )
