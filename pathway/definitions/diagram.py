"""Pathway diagrams as text: Mermaid `stateDiagram-v2` and Graphviz DOT."""

from __future__ import annotations

from pathway.domain.definition import HELD_FROM, TransitionSpec, Workflow


def _label(t: TransitionSpec) -> str:
    guards = ", ".join(g.name for g in t.guards)
    return f"{t.trigger} [{guards}]" if guards else t.trigger


def mermaid(workflow: Workflow) -> str:
    """Mermaid stateDiagram-v2 text."""
    lines = ["stateDiagram-v2", f"    %% {workflow.id} v{workflow.version}: {workflow.title}"]
    lines.append(f"    [*] --> {workflow.initial}")
    for state in workflow.states.values():
        if state.sla_days:
            lines.append(f"    {state.name} : {state.name} (SLA {state.sla_days} d)")
    for t in workflow.transitions:
        for s in t.sources:
            if t.dest == HELD_FROM:
                lines.append(f"    {s} --> held_from : {_label(t)}")
            else:
                lines.append(f"    {s} --> {t.dest} : {_label(t)}")
    if any(t.dest == HELD_FROM for t in workflow.transitions):
        lines.append("    held_from : the state the hold came from")
    for state in workflow.states.values():
        if state.terminal:
            lines.append(f"    {state.name} --> [*]")
    return "\n".join(lines) + "\n"


def dot(workflow: Workflow) -> str:
    """Graphviz DOT text."""
    lines = [
        f'digraph "{workflow.id}" {{',
        f'  label="{workflow.title} (v{workflow.version})";',
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for state in workflow.states.values():
        attrs = []
        label = state.name + (f"\\nSLA {state.sla_days} d" if state.sla_days else "")
        attrs.append(f'label="{label}"')
        if state.terminal:
            attrs.append("peripheries=2")
        if state.initial:
            attrs.append('style="rounded,bold"')
        lines.append(f'  "{state.name}" [{", ".join(attrs)}];')
    if any(t.dest == HELD_FROM for t in workflow.transitions):
        lines.append('  "held_from" [label="(the state the hold came from)", shape=plaintext];')
    for t in workflow.transitions:
        dest = "held_from" if t.dest == HELD_FROM else t.dest
        for s in t.sources:
            lines.append(f'  "{s}" -> "{dest}" [label="{_label(t)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
