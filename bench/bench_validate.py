"""How long validating a 10,000-step scenario takes (load, schema, checks, build); target < 1 s.

The headline is the median wall time of ``inspect_scenario`` over several runs (the machine
may be busy with other work; the best run is shown too). A second line splits one run into
its stages in CPU time, which other processes disturb less.

Run from the repository root: ``python bench/bench_validate.py [--steps 10000] [--runs 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from wscenario.core.build import build_scenario
from wscenario.core.checks import check_data
from wscenario.core.scenario_loader import inspect_scenario
from wscenario.core.schema import validate_data
from wscenario.core.source import load_yaml_file

STEPS = 10_000
RUNS = 5


def scenario_text(steps: int) -> str:
    """A client scenario with ``steps`` steps of every common kind."""
    lines = ["wscenario: 1", "vars: {user: alice}", 'client: {url: "ws://127.0.0.1:8765/"}']
    lines.append("steps:")
    kinds = [
        "  - send: {json: {type: chat, user: '{{ user }}', n: %d}}",
        "  - expect: {message: {json: {type: chat, n: %d}, match: subset}, save: {id: /id}}",
        "  - expect: {message: {regex: '^ok (?P<n%d>\\\\d+)$'}}",
        "  - sleep: %dms",
    ]
    lines.extend(kinds[i % len(kinds)] % i for i in range(steps))
    return "\n".join(lines) + "\n"


def stages(path: Path) -> dict[str, float]:
    """CPU seconds of each stage of validating ``path`` (it must be a valid scenario)."""
    clock = time.process_time
    start = clock()
    doc = load_yaml_file(path)
    loaded = clock()
    assert validate_data(doc) == []
    validated = clock()
    check_data(doc, base_dir=path.parent)
    checked = clock()
    build_scenario(doc, base_dir=path.parent)
    built = clock()
    return {
        "load": loaded - start,
        "schema": validated - loaded,
        "checks": checked - validated,
        "build": built - checked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    if args.steps < 1 or args.runs < 1:
        parser.error("--steps and --runs must be at least 1")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(scenario_text(args.steps), encoding="utf-8")
        inspect_scenario(path)  # builds the validator once, as a long-lived process would
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            diagnostics, scenario = inspect_scenario(path)
            times.append(time.perf_counter() - start)
            assert scenario is not None, [d.render() for d in diagnostics]
            steps = len(scenario.steps)
        split = stages(path)
    print(
        f"validated {steps} steps in {statistics.median(times):.3f} s "
        f"(median of {args.runs}, best {min(times):.3f} s; target < 1 s)"
    )
    print("CPU seconds: " + ", ".join(f"{name} {took:.3f}" for name, took in split.items()))


if __name__ == "__main__":
    main()
