"""The state machine: one `transitions.Machine` per (pathway, version), shared by every patient.

Events fire on a short-lived token model per call, never `add_model`-ed (a
growing model list costs memory and quadratic time, transitions #146/#434), and
`auto_transitions` stays off because its `to_<state>()` methods skip guards.
Each transition's condition evaluates every guard of that transition through
the same function `check` uses, so what is explained is what is enforced.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from pathway.domain.definition import HELD_FROM, TransitionSpec, Workflow
from pathway.domain.guards import GuardRegistry
from pathway.domain.record import PatientRecord
from pathway.domain.verdicts import Failure, Verdict, failures, refusal
from pathway.errors import GuardError, GuardRefused, InvalidTrigger, RoleRefused

REASON_GUARD = "reason_given"
#: The criterion of a check whose guard's code failed (see GuardRegistry.evaluate).
GUARD_FAULT = "guard_fault"


@dataclass(frozen=True)
class TriggerCheck:
    """Whether `trigger` could fire now, and every unmet criterion if not."""

    trigger: str
    dest: str | None
    allowed: bool
    role_allowed: bool
    roles: tuple[str, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def failures(self) -> list[Failure]:
        """Every unmet criterion, each fact once (see `verdicts.failures`)."""
        return [f for _, f in failures(list(self.verdicts))]


@dataclass(frozen=True)
class Fired:
    """A transition that passed its guards."""

    trigger: str
    source: str
    dest: str
    verdicts: tuple[Verdict, ...]


@dataclass(frozen=True)
class Choice:
    """Which transition a trigger would take now: `spec` (None when none of its transitions
    passes), where it goes, and the verdicts that decided (the chosen transition's, or the
    first transition's when none passes, or the faulty one's when a guard's code failed)."""

    trigger: str
    spec: TransitionSpec | None
    dest: str | None
    verdicts: tuple[Verdict, ...]
    roles: tuple[str, ...]
    fault: bool = False

    @property
    def fires(self) -> bool:
        return self.spec is not None and not self.fault


class _Fault(Exception):
    """A guard's code failed while choosing for a check: stop there, as `fire` would."""


@dataclass
class _Token:
    """The per-call model the shared machine moves: a state and the record to judge."""

    state: str
    held_from: str | None
    record: PatientRecord
    faults_fail: bool
    verdicts: dict[int, tuple[Verdict, ...]] = field(default_factory=dict)
    passed: int | None = None  # the index of the transition whose conditions passed


class PathwayMachine:
    """The compiled machine of one workflow version."""

    def __init__(self, workflow: Workflow, guards: GuardRegistry) -> None:
        self.workflow = workflow
        self.guards = guards
        self._index = {id(t): i for i, t in enumerate(workflow.transitions)}
        self.machine = Machine(
            model=None,
            states=list(workflow.states),
            initial=workflow.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        returnable = [s.name for s in workflow.states.values() if not s.terminal and not s.hold]
        for i, t in enumerate(workflow.transitions):
            if not t.sources:
                continue
            if t.dest == HELD_FROM:
                for back in returnable:
                    self.machine.add_transition(
                        t.trigger,
                        list(t.sources),
                        back,
                        conditions=[self._returns_to(back), self._passes(i)],
                    )
            else:
                self.machine.add_transition(t.trigger, list(t.sources), t.dest, conditions=[self._passes(i)])

    def _returns_to(self, state: str) -> Any:
        def condition(event: Any) -> bool:
            return bool(event.model.held_from == state)

        return condition

    def _passes(self, index: int) -> Any:
        spec = self.workflow.transitions[index]

        def condition(event: Any) -> bool:
            token: _Token = event.model
            verdicts = self.evaluate(spec, token.record, faults_fail=token.faults_fail)
            token.verdicts[index] = verdicts
            if any(f.criterion == GUARD_FAULT for v in verdicts for f in v.failures):
                raise _Fault
            if all(v.passed for v in verdicts):
                token.passed = index
                return True
            return False

        return condition

    def evaluate(
        self, spec: TransitionSpec, record: PatientRecord, *, faults_fail: bool = False
    ) -> tuple[Verdict, ...]:
        """Every verdict for one transition: its reason rule and each guard. A guard whose
        code fails raises GuardError, or with `faults_fail` (checks, which show every
        trigger) is a failed criterion that says so."""
        verdicts: list[Verdict] = []
        if spec.reason_required:
            given = bool(record.reason and record.reason.strip())
            failures = (
                () if given else (Failure("reason", f"{spec.trigger} needs a reason: give --reason TEXT"),)
            )
            verdicts.append(Verdict(REASON_GUARD, failures))
        for ref in spec.guards:
            try:
                verdicts.append(self.guards.evaluate(self.workflow, ref, record))
            except GuardError as exc:
                if not faults_fail:
                    raise
                verdicts.append(Verdict(ref.name, (Failure(GUARD_FAULT, str(exc)),)))
        return tuple(verdicts)

    def _candidates(self, state: str, trigger: str) -> tuple[TransitionSpec, ...]:
        if trigger not in self.workflow.triggers:
            raise InvalidTrigger(
                f"unknown trigger {trigger!r} in {self.workflow.id}; "
                f"from {state} you can use: {self._valid_list(state)}"
            )
        found = tuple(t for t in self.workflow.transitions_from(state) if t.trigger == trigger)
        if not found:
            raise InvalidTrigger(
                f"{trigger} is not possible from {state}; from {state} you can use: {self._valid_list(state)}"
            )
        return found

    def _valid_list(self, state: str) -> str:
        return ", ".join(self.workflow.triggers_from(state)) or "nothing (the state is terminal)"

    def choose(
        self, state: str, held_from: str | None, trigger: str, record: PatientRecord, *, faults_fail: bool
    ) -> Choice:
        """The one place a trigger's transition is chosen (check, advance and batches alike):
        the `transitions` machine tries the trigger's transitions from `state` in file order
        and takes the first whose guards pass. A guard whose code fails stops the choice:
        GuardError, or with `faults_fail` a Choice that says so."""
        candidates = self._candidates(state, trigger)
        roles = tuple(dict.fromkeys(r for t in candidates for r in t.roles))
        token = _Token(state=state, held_from=held_from, record=record, faults_fail=faults_fail)
        try:
            fired = self.machine.events[trigger].trigger(token)
        except _Fault:
            index = max(token.verdicts)  # the transition being judged when its guard failed
            spec = self.workflow.transitions[index]
            return Choice(
                trigger, spec, self._dest(spec, held_from), token.verdicts[index], roles, fault=True
            )
        if fired and token.passed is not None:
            spec = self.workflow.transitions[token.passed]
            return Choice(trigger, spec, token.state, token.verdicts[token.passed], roles)
        first = candidates[0]
        verdicts = token.verdicts.get(self._index[id(first)], ())
        return Choice(trigger, None, self._dest(first, held_from), verdicts, roles)

    @staticmethod
    def _dest(spec: TransitionSpec, held_from: str | None) -> str | None:
        return held_from if spec.dest == HELD_FROM else spec.dest

    def check(
        self, state: str, held_from: str | None, record: PatientRecord, role: str | None = None
    ) -> list[TriggerCheck]:
        """Every trigger possible from `state`, with pass/fail and every unmet criterion."""
        return [
            self.check_trigger(state, held_from, trigger, record, role)
            for trigger in self.workflow.triggers_from(state)
        ]

    def check_trigger(
        self,
        state: str,
        held_from: str | None,
        trigger: str,
        record: PatientRecord,
        role: str | None = None,
    ) -> TriggerCheck:
        choice = self.choose(state, held_from, trigger, record, faults_fail=True)
        role_allowed = role is None or role in choice.roles
        return TriggerCheck(trigger, choice.dest, choice.fires, role_allowed, choice.roles, choice.verdicts)

    def fire(
        self,
        state: str,
        held_from: str | None,
        trigger: str,
        record: PatientRecord,
        role: str,
        describe: str,
    ) -> Fired:
        """Fire `trigger`: the new state, or RoleRefused / GuardRefused / InvalidTrigger."""
        roles = tuple(dict.fromkeys(r for t in self._candidates(state, trigger) for r in t.roles))
        if role not in roles:
            raise RoleRefused(
                f"cannot {trigger} for {describe}: the {role} role may not; it needs {' or '.join(roles)}",
                roles,
            )
        choice = self.choose(state, held_from, trigger, record, faults_fail=False)
        if not choice.fires or choice.dest is None:
            messages = refusal(choice.verdicts)
            if not messages and self._candidates(state, trigger)[0].dest == HELD_FROM:
                messages = f"there is no state to return to (held from {held_from!r})"
            raise GuardRefused(f"cannot {trigger} for {describe}: {messages}", trigger, choice.verdicts)
        return Fired(trigger, state, choice.dest, choice.verdicts)


_lock = threading.Lock()
_machines: dict[tuple[str, int, str], PathwayMachine] = {}
# id(workflow) -> (workflow, machine): the fast path for a definition seen before.
_by_identity: dict[int, tuple[Workflow, PathwayMachine]] = {}
_IDENTITY_LIMIT = 256


def machine_for(workflow: Workflow, guards: GuardRegistry) -> PathwayMachine:
    """The cached machine of (pathway, version): built once per process, shared by all patients.

    A catalog loaded again gives equal definitions, which reuse the machine.
    """
    hit = _by_identity.get(id(workflow))
    if hit is not None and hit[0] is workflow and hit[1].guards is guards:
        return hit[1]
    with _lock:
        key = (workflow.id, workflow.version, workflow.source)
        found = _machines.get(key)
        if found is None or found.guards is not guards or found.workflow != workflow:
            found = PathwayMachine(workflow, guards)
            _machines[key] = found
        if len(_by_identity) >= _IDENTITY_LIMIT:
            _by_identity.clear()
        _by_identity[id(workflow)] = (workflow, found)
    return found
