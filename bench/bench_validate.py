"""How long validating a 10,000-step scenario takes (schema, checks and build); target < 1 s.

Run from the repository root: ``python bench/bench_validate.py``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from wscenario.core.scenario_loader import inspect_scenario

STEPS = 10_000


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


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(scenario_text(STEPS), encoding="utf-8")
        inspect_scenario(path)  # builds the validator once, as a long-lived process would
        start = time.perf_counter()
        diagnostics, scenario = inspect_scenario(path)
        elapsed = time.perf_counter() - start
    assert scenario is not None, [d.render() for d in diagnostics]
    print(f"validated {len(scenario.steps)} steps in {elapsed:.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
