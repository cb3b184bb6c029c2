"""TLS contexts for wss clients and servers.

Client policies (``core.wire.TlsPolicy.mode``):

``strict``
    ``ssl.create_default_context``: the chain must end at a trusted CA (``cafile`` replaces
    the system store) and the certificate must name the URL's host.
``device``
    What OpenHarmony does (libwebsockets with "skip hostname check" and "allow self-signed"):
    the chain must end at a trusted CA, the host name is not checked, and a self-signed leaf
    is accepted. Expired or not-yet-valid certificates are accepted only with
    ``allow_expired``. Python's ``ssl`` has no verify callback, so the self-signed case is
    recognised from the verify error of the first handshake (``DEPTH_ZERO_SELF_SIGNED_CERT``)
    and ``engine.websocket.connect`` then connects once more with ``self_signed_context``. The
    server therefore sees one refused TLS handshake first, and the validity dates of a
    self-signed leaf are not checked.
``none``
    No verification at all.

All contexts require TLS 1.2 or later. SNI is the URL's host (set by the caller).
"""

from __future__ import annotations

import ssl

from wscenario.core.wire import TlsPolicy
from wscenario.engine.errors import TlsSetupError

X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
"""OpenSSL's verify code for a self-signed leaf that no trusted CA vouches for."""

_X509_V_FLAG_NO_CHECK_TIME = 0x200000
"""OpenSSL's verify flag that skips the validity-period check (not exposed by ``ssl``)."""


def client_context(policy: TlsPolicy) -> ssl.SSLContext:
    """A client context that verifies the server as ``policy`` says.

    Raises:
        TlsSetupError: the CA file or the client certificate cannot be used.
    """
    if policy.mode == "none":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = _verifying_context(policy.cafile)
        if policy.mode == "device":
            context.check_hostname = False
            if policy.allow_expired:
                context.verify_flags |= _X509_V_FLAG_NO_CHECK_TIME
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if policy.certfile:
        _load_identity(context, policy.certfile, policy.keyfile, policy.password)
    return context


def self_signed_context(policy: TlsPolicy) -> ssl.SSLContext:
    """The context for the second attempt after a self-signed leaf (device policy only).

    The leaf vouches for itself, so nothing is left to check against a CA; the client
    certificate is still presented.
    """
    return client_context(
        TlsPolicy(
            mode="none",
            certfile=policy.certfile,
            keyfile=policy.keyfile,
            password=policy.password,
        )
    )


def accepts_self_signed(policy: TlsPolicy, error: BaseException) -> bool:
    """Whether ``error`` from a handshake only means "self-signed leaf" and ``policy`` allows it."""
    return (
        policy.mode == "device"
        and isinstance(error, ssl.SSLCertVerificationError)
        and error.verify_code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    )


def server_context(
    certfile: str,
    keyfile: str | None = None,
    client_ca: str | None = None,
    *,
    password: str | None = None,
) -> ssl.SSLContext:
    """A server context presenting ``certfile``; with ``client_ca`` clients must show a cert.

    Raises:
        TlsSetupError: a file cannot be read or the key does not fit.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # trusts no client CA unless given
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_identity(context, certfile, keyfile, password)
    if client_ca is not None:
        load_cafile(context, client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _verifying_context(cafile: str | None) -> ssl.SSLContext:
    if cafile is None:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # what create_default_context builds
    load_cafile(context, cafile)
    return context


def load_cafile(context: ssl.SSLContext, cafile: str) -> None:
    """Trust the CA certificates in ``cafile`` too (PEM), in addition to what ``context`` has.

    Raises:
        TlsSetupError: the file cannot be read or holds no certificate.
    """
    try:
        context.load_verify_locations(cafile=cafile)
    except ssl.SSLError as exc:  # before OSError: it is one
        raise TlsSetupError(f"CA file {cafile!r} holds no usable certificate") from exc
    except OSError as exc:
        raise TlsSetupError(f"cannot read CA file {cafile!r}: {exc.strerror or exc}") from exc


def _load_identity(
    context: ssl.SSLContext, certfile: str, keyfile: str | None, password: str | None
) -> None:
    try:
        # a password is always given, so OpenSSL never asks for one on the terminal
        context.load_cert_chain(certfile, keyfile, password=password or "")
    except ssl.SSLError as exc:  # before OSError: it is one
        raise TlsSetupError(_identity_problem(certfile, keyfile, password, exc)) from exc
    except OSError as exc:
        missing = exc.filename or f"{certfile!r} or {keyfile!r}"
        raise TlsSetupError(f"cannot read {missing}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # ssl raises it for a password it cannot use
        raise TlsSetupError(f"cannot use the key password for {keyfile or certfile!r}") from exc


def _identity_problem(
    certfile: str, keyfile: str | None, password: str | None, exc: ssl.SSLError
) -> str:
    key = keyfile or certfile
    if "key values mismatch" in str(exc).lower():
        return f"the private key {key!r} does not belong to the certificate {certfile!r}"
    if _is_encrypted(key):
        if password:
            return f"wrong password for the private key {key!r}"
        return f"the private key {key!r} is encrypted: a password is needed"
    return f"cannot load the certificate {certfile!r} with the key {key!r}: {exc.reason or exc}"


def _is_encrypted(keyfile: str) -> bool:
    try:
        with open(keyfile, "rb") as file:
            return b"ENCRYPTED" in file.read(64 * 1024)
    except OSError:
        return False
