"""The core is sans-I/O: importing all of it loads no network or event-loop module."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import wscenario.core
import wscenario.core.events
import wscenario.core.wire

FORBIDDEN = ("anyio", "wsproto", "h11", "socket", "ssl", "asyncio", "selectors")


def test_core_imports_no_io_modules() -> None:
    modules = [m.name for m in pkgutil.iter_modules(wscenario.core.__path__, "wscenario.core.")]
    assert modules, "the core package has modules"
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
