"""The kinds of worklist item, most urgent kind first (a module of its own, so the command
line can offer them as choices without loading the engine)."""

KINDS = (
    "new_referral",
    "over_sla",
    "sla_due",
    "rtt_breach",
    "rtt_at_risk",
    "follow_up_due",
    "ready",
    "blocked",
    "guard_error",
)
