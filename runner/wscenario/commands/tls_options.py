"""``--tls-cert``, ``--tls-key`` and ``--client-ca``: listening for ``wss://``.

Only ``argparse`` is imported at module level: the parser is built at every start.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wscenario.errors import UsageError

if TYPE_CHECKING:
    import ssl


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that listens, to listen for ``wss://``."""
    parser.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    parser.add_argument(
        "--client-ca", metavar="FILE", help="require client certificates issued by this CA"
    )


def listening_tls(args: argparse.Namespace) -> tuple[str, str, str | None] | None:
    """``(certfile, keyfile, client_ca)`` when the options ask for ``wss://``, else ``None``.

    Raises:
        UsageError: ``--tls-cert`` without ``--tls-key`` (or the reverse), or ``--client-ca``
            without them.
    """
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        raise UsageError("--client-ca needs --tls-cert and --tls-key")
    if args.tls_cert is None:
        return None
    return args.tls_cert, args.tls_key, args.client_ca


def listening_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server TLS context the options ask for (``None``: plain ``ws://``).

    Raises:
        UsageError: options that do not go together (see ``listening_tls``).
        TlsSetupError: a file cannot be read, or the key does not fit the certificate.
    """
    files = listening_tls(args)
    if files is None:
        return None
    from wscenario.engine.tls import server_context

    return server_context(*files)
