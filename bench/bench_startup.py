"""Start-up benchmark: ``wscenario --version`` against a bare ``python -c pass``.

The command line imports only what a command needs, so asking for the version must stay
quick (goal: under 150 ms here). Run: ``python bench/bench_startup.py [--runs 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    """Median wall time of ``runs`` runs of ``command``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print both medians and the difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    version = median_seconds([sys.executable, "-m", "wscenario", "--version"], args.runs)
    print(f"python -c pass            {bare * 1000:7.1f} ms")
    print(f"wscenario --version       {version * 1000:7.1f} ms  (goal < 150 ms)")
    print(f"wscenario's own share     {(version - bare) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
