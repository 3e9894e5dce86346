"""Verifier benchmark: generated case histories per second on the shipped protocol (processes/, forms/).

Run from the project root:  python -m benchmarks.verifier_bench [--histories 40] [--days 365] [--workers 2]
                            python -m benchmarks.verifier_bench --properties   # the long Hypothesis run too

Prints histories per second (wall clock, worker start-up included), events per history, the levels
reached and the invariants broken. Figures are reported, never asserted (target: >= 2 histories/s
on 2 cores for histories of a year).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from engine.definitions import read_directory
from engine.models.agency import DEFAULT_KINDS
from engine.simulation import World
from engine.verifier import Settings, summary, verify

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2.0


def main() -> int:
    """Verify the shipped protocol and print the speed; with --properties, run the long Hypothesis profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=40)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 2))
    parser.add_argument("--properties", action="store_true", help="also run the Hypothesis 'long' profile")
    args = parser.parse_args()
    report = verify(read_directory(ROOT / "processes", ROOT / "forms"), World(dict(DEFAULT_KINDS), "EX"),
                    Settings(histories=args.histories, days=args.days, seed=args.seed, workers=args.workers))
    for line in summary(report)[:3]:
        print(line)
    verdict = "ok" if report.per_second >= TARGET else "BELOW TARGET"
    print(f"verifier: {report.per_second:.2f} histories/s with {args.workers} worker(s) "
          f"(target >= {TARGET:.0f}): {verdict}")
    print(f"broken invariants: {', '.join(f.invariant_id for f in report.findings) or 'none'}")
    if args.properties:
        env = {**os.environ, "COORDINA_HYPOTHESIS_PROFILE": "long"}
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "tests/processes/test_protocol_properties.py"], cwd=ROOT, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
