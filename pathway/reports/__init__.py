"""Reports for clinic managers, computed by SQL aggregation over the event log.

Each reads what the workflow files declare (SLAs, planned and optional states, the
RTT clock, the outcome measure); none names a pathway's states or triggers.
"""

from pathway.reports.bottlenecks import BottleneckReport, StateLine, bottlenecks, kth_newest
from pathway.reports.funnel import funnel
from pathway.reports.outcomes import outcomes
from pathway.reports.rtt import PathwayRtt, RttReport, rtt

__all__ = [
    "BottleneckReport",
    "PathwayRtt",
    "RttReport",
    "StateLine",
    "bottlenecks",
    "funnel",
    "kth_newest",
    "outcomes",
    "rtt",
]
