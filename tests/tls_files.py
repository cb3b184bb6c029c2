"""Certificate files for tests of commands that listen for wss:// (made by ``trustme``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate for 127.0.0.1, its key, and the CA that issued it, as files."""

    cert: Path
    key: Path
    ca: Path

    def options(self, *, client_ca: bool = False) -> list[str]:
        """The command line options that listen with them (``--client-ca`` too, if asked)."""
        options = ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        return [*options, "--client-ca", str(self.ca)] if client_ca else options


def tls_files(folder: Path, ca: trustme.CA) -> TlsFiles:
    """Write a certificate for 127.0.0.1 issued by ``ca``, its key and ``ca`` into ``folder``."""
    issued = ca.issue_cert("127.0.0.1")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


def trusting(ca: trustme.CA, *, identity: str | None = None) -> ssl.SSLContext:
    """A client context that trusts ``ca``, showing a certificate for ``identity`` if given."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if identity is not None:
        ca.issue_cert(identity).configure_cert(context)
    return context
