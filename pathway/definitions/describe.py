"""A workflow as plain data, for `workflows show` and integrators."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pathway.domain.definition import HELD_FROM, Workflow


def describe_workflow(wf: Workflow) -> dict[str, Any]:
    return {
        "id": wf.id,
        "version": wf.version,
        "title": wf.title,
        "description": wf.description,
        "default": wf.default,
        "region": wf.region,
        "levels": list(wf.levels),
        "roles": list(wf.roles),
        "params": dict(wf.params),
        "profiles": {
            p.name: {
                "default": p.name == wf.default_profile,
                "description": p.description,
                "params": dict(p.params),
            }
            for p in wf.profiles.values()
        },
        "states": [
            {
                "name": s.name,
                "kind": "initial"
                if s.initial
                else "terminal"
                if s.terminal
                else "hold"
                if s.hold
                else "active",
                "sla_days": s.sla_days,
                "planned": s.planned,
                "optional": s.optional,
                "completed": s.completed,
                "description": s.description,
            }
            for s in wf.states.values()
        ],
        "transitions": [
            {
                "trigger": t.trigger,
                "from": list(t.sources),
                "to": "(the state the hold came from)" if t.dest == HELD_FROM else t.dest,
                "roles": list(t.roles),
                "guards": [g.name for g in t.guards],
                "reason_required": t.reason_required,
                "description": t.description,
            }
            for t in wf.transitions
        ],
        "observations": [
            {
                "kind": k.name,
                "roles": list(k.roles),
                "description": k.description,
                "checks": [g.name for g in k.guards],
                "fields": [
                    {
                        "name": f.name,
                        "type": f.type,
                        "required": f.required,
                        "allowed": f.describe(),
                        "description": f.description,
                    }
                    for f in k.fields.values()
                ],
            }
            for k in wf.kinds.values()
        ],
        **declarations(wf),
    }


def declarations(wf: Workflow) -> dict[str, Any]:
    """The rtt, outcome, follow_up, worklist, fhir and simulation sections as plain data
    (None for a section the file leaves out)."""
    d = wf.declarations
    fhir = {
        "scores": {kind: list(fields) for kind, fields in d.fhir.scores.items()},
        "codes": {name: asdict(code) for name, code in d.fhir.codes.items()},
        "procedures": {kind: asdict(spec) for kind, spec in d.fhir.procedures.items()},
    }
    return {
        "rtt": None if d.rtt is None else asdict(d.rtt),
        "outcome": None if d.outcome is None else asdict(d.outcome),
        "follow_up": None if d.follow_up is None else asdict(d.follow_up),
        "worklist": asdict(d.worklist),
        "fhir": fhir,
        "simulation": None if d.simulation is None else asdict(d.simulation),
    }
