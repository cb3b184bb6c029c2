"""wscenario: record-and-replay WebSocket scenarios, seen as an OpenHarmony app sees them."""

from wscenario._version import __version__

__all__ = ["__version__"]
