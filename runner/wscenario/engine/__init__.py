"""The I/O layer: anyio + wsproto, and nothing else. Everything it decides lives in ``core``."""
