"""``python -m bench faults``: the fault harness's burst (``sandbox.faults.harness``).

Runs the sandbox behind the fault proxy: a burst of uploads (200 by default), re-uploads of
the same bytes, racing duplicate S3 and Batch events, kill -9 at random points; prints the
table (tried / survived / lost / duplicated per scenario, emails per input version, faults
injected, the sandbox's peak memory) and writes it to ``bench/results/faults-latest.md``
and ``.json``. Exit 1 unless 0 lost, 0 wrong pixels and one email per input version (the
counted lost-Publish-response window aside) and nothing left under ``partial/``.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.workloads import REPO

DEFAULT_RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    from sandbox.faults.harness import DEFAULT_PLAN, Harness, write_report

    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__)
    parser.add_argument("--burst", type=int, default=200, help="uploads at once")
    parser.add_argument("--reuse", type=int, default=10, help="re-uploads of the same bytes")
    parser.add_argument("--races", type=int, default=10, help="uploads with duplicate events")
    parser.add_argument("--kills", type=int, default=10, help="uploads whose 1st attempt dies")
    parser.add_argument("--seed", type=int, default=DEFAULT_PLAN.seed)
    parser.add_argument("--work", type=Path, default=None, help="[default: a temporary dir]")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rasterdrop-faults-") as tmp:
        harness = Harness(
            args.work or Path(tmp),
            burst=args.burst,
            reuse=args.reuse,
            races=args.races,
            kills=args.kills,
            plan=replace(DEFAULT_PLAN, seed=args.seed),
            echo=lambda line: print(line, flush=True),
        )
        report = harness.run()
    md, js = write_report(report, args.results)
    print(report.markdown())
    print(f"written: {md}, {js}")
    return 0 if report.ok else 1
