"""The spine pathways' diagnostic block guards: a valid, positive block; two qualifying blocks;
the limit on blocks in any 12 months (CLINICAL.md clarification 4)."""

from __future__ import annotations

from pathway.domain.guards import guard
from pathway.domain.record import Observation, PatientRecord
from pathway.domain.timeutil import minus_years
from pathway.domain.verdicts import Criteria, Verdict
from pathway_workflows.spine_common import Params, hours, last_two_blocks, pct, relief

BLOCK_FIELDS = (
    "side",
    "levels",
    "agent",
    "guidance",
    "sedation",
    "pre_nrs",
    "post_nrs",
    "relief_hours",
)


def block_problems(block: Observation, params: Params) -> list[tuple[str, str]]:
    """Why a block is not valid or not positive: (criterion, detail) pairs; empty when positive."""
    problems: list[tuple[str, str]] = []
    allowed_guidance = list(params["block_guidance"])
    if block["guidance"] not in allowed_guidance:
        problems.append(
            (
                "guidance",
                f"guidance {block['guidance']} is not accepted (allowed: {', '.join(allowed_guidance)})",
            )
        )
    allowed_sedation = list(params["block_sedation"])
    if block["sedation"] not in allowed_sedation:
        problems.append(
            (
                "sedation",
                f"sedation {block['sedation']} makes it invalid (allowed: {', '.join(allowed_sedation)})",
            )
        )
    pre, post = block["pre_nrs"], block["post_nrs"]
    if pre <= 0:
        problems.append(("pre_nrs", "pre-block NRS is 0, so relief cannot be measured"))
    else:
        value = relief(pre, post)
        need = params["min_block_relief_pct"]
        if value < need:
            problems.append(("relief", f"relief {pct(value)}% is below the {need}% threshold"))
    minimum = params["agent_min_relief_hours"].get(block["agent"], 0)
    if block["relief_hours"] < minimum:
        problems.append(
            (
                "relief_hours",
                f"relief lasted {hours(block['relief_hours'])}, "
                f"below the {hours(minimum)} expected of "
                f"{block['agent']}",
            )
        )
    return problems


@guard(
    "two_qualifying_blocks",
    reads={"block": BLOCK_FIELDS},
    params=(
        "block_guidance",
        "block_sedation",
        "min_block_relief_pct",
        "agent_min_relief_hours",
        "min_block_interval_days",
    ),
)
def two_qualifying_blocks(record: PatientRecord, params: Params) -> Verdict:
    """The two most recent blocks are both positive and concordant."""
    c = Criteria("two_qualifying_blocks")
    pair = last_two_blocks(record)
    if len(pair) < 2:
        # The blocks are recorded as they are given: until then the patient waits as planned.
        c.fail("two_blocks", f"two diagnostic blocks are needed; {len(pair)} recorded", awaiting=True)
        return c.verdict()
    first, second = pair
    for label, block in (("first", first), ("second", second)):
        for criterion, detail in block_problems(block, params):
            c.fail(f"{label}_block_{criterion}", f"{label} block ({block.day.isoformat()}) {detail}")
    c.require(
        first["side"] == second["side"],
        "same_side",
        f"the blocks were on different sides ({first['side']}, then {second['side']})",
    )
    if set(first["levels"]) != set(second["levels"]):
        c.fail(
            "same_levels",
            f"the blocks were at different levels "
            f"({','.join(first['levels'])}, then {','.join(second['levels'])})",
        )
    gap = (second.day - first.day).days
    need = params["min_block_interval_days"]
    c.require(
        gap >= need,
        "block_interval",
        f"the blocks were {gap} days apart; at least {need} are needed",
    )
    agents = {first["agent"]: first, second["agent"]: second}
    if set(agents) == {"lidocaine", "bupivacaine"}:
        lido, bupi = agents["lidocaine"], agents["bupivacaine"]
        c.require(
            bupi["relief_hours"] > lido["relief_hours"],
            "concordant_response",
            f"bupivacaine relief ({hours(bupi['relief_hours'])}) did not outlast lidocaine "
            f"relief ({hours(lido['relief_hours'])}): the response is not concordant",
        )
    return c.verdict()


@guard(
    "block_session_limit",
    reads={"block": ("levels",)},
    params=("max_diagnostic_sessions_per_year",),
)
def block_session_limit(record: PatientRecord, params: Params) -> Verdict:
    """Recording a block may not make any 12-month window that holds it exceed the blocks
    allowed (clarification 4: a back-dated block must not overfill a window ending later)."""
    c = Criteria("block_session_limit")
    limit = params["max_diagnostic_sessions_per_year"]
    blocks = [o.day for o in record.region_observations_any_day if o.kind == "block"]
    new = record.recording.day if record.recording is not None else record.today
    # A window's count is greatest when it ends on a block: each window [D - 1 year, D] that
    # holds the new block and ends on a block (the new one too) is counted.
    for end in sorted({d for d in blocks if d >= new} | {new}):
        start = minus_years(end, 1)
        if start > new:
            break
        count = sum(1 for d in blocks if start <= d <= end)
        if count > limit:
            c.fail(
                "blocks_per_year",
                f"this block would make {count} blocks in the 12 months up to {end.isoformat()}; "
                f"at most {limit} are allowed",
            )
            break
    return c.verdict()
