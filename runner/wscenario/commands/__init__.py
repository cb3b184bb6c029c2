"""One module per command; each has ``run(args) -> int`` and is imported only when used."""
