"""Longer concurrency stress: 8 processes on the same 200 enrollments.

    python bench/stress.py [--operations 500] [--db URL]

The same workers and invariants as tests/integration/test_concurrency.py, with
more operations per process; prints what happened and checks that nothing was
lost, doubled or out of order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import test_concurrency as stress


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=500, help="per process")
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/stress.db"
    stress.prepare(url)
    start = time.perf_counter()
    results = stress.run_workers(url, args.operations)
    elapsed = time.perf_counter() - start
    stress.check_invariants(url, results)
    done: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for r in results:
        done.update(r["done"])
        failed.update(r["failures"])
    total = stress.PROCESSES * args.operations
    print(f"{total} operations by {stress.PROCESSES} processes in {elapsed:.1f} s ({total / elapsed:.0f}/s)")
    print(f"  succeeded: {dict(done)}")
    print(f"  conflicts (ConcurrencyError): {failed['conflict']}, guard refusals: {failed['refused']}")
    print("  invariants hold: nothing lost or doubled, sequences contiguous, replay = stored state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
