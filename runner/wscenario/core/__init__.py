"""The sans-I/O core: scenario language, matchers, templating and device semantics.

Nothing in this package opens a socket, imports anyio or wsproto, or reads a clock:
time is always passed in. That keeps every rule testable without a network.
"""
