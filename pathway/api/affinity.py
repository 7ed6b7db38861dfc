"""`pathway serve --pin-cpus`: each worker process keeps to one CPU core of those it may
use, worker k to the k-th (round the list again when there are more workers than cores).

A worker runs Python in one thread at a time (the interpreter lock), handing the lock
between its event loop and its thread pool several times a request; when those threads
sit on different cores, every hand-over moves the lock and the objects it guards from
one core's cache to the other's. Kept on one core, a worker used 10-25% less CPU an
advance and answered 10-30% more advances a second here (2 cores, 8 clients,
`bench/serve_ab.py --b=--pin-cpus`; the README has the figures). It is off by default:
on a machine whose cores other services share, they cannot move the workers off a busy
core.

Workers learn their number from a folder `serve` makes: each takes the first
`worker-K` file nobody holds a lock on, and keeps the lock while it lives (a worker
uvicorn starts again after one died takes the number that died with it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

ENV = "PATHWAY_CPU_SLOTS"
MAX_WORKERS = 256
_held: list[IO[str]] = []  # the lock a worker holds on its number, for its lifetime


def available() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def claim_core(folder: Path) -> int | None:
    """Take the first free worker number in `folder` and keep this process (its threads
    to come) on the matching core; the core, or None where affinity cannot be set."""
    if not available():
        return None
    import fcntl  # POSIX only, as affinity is

    cores = sorted(os.sched_getaffinity(0))
    for number in range(MAX_WORKERS):
        handle = (folder / f"worker-{number}").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held.append(handle)
        core = cores[number % len(cores)]
        os.sched_setaffinity(0, {core})
        return core
    return None
