"""TLS policies against a real TLS server (websockets) with trustme-made certificates."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trustme
from anyio.streams.tls import TLSStream
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection

from tests.engine.ws_peers import raw_server, read_head, upgrade_response, websockets_server
from wscenario.core.model import Limits
from wscenario.core.wire import (
    ConnectionLost,
    ConnectRequest,
    DataFrame,
    HandshakeFailed,
    SendMessage,
    TlsPolicy,
)
from wscenario.engine import tls
from wscenario.engine.errors import HandshakeError, TlsSetupError
from wscenario.engine.websocket import connect

pytestmark = pytest.mark.anyio

LIMITS = Limits(close_timeout=2.0, handshake_timeout=5.0)
PAST = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def leaf_files(
    ca: trustme.CA, directory: Path, *names: str, expired: bool = False
) -> tuple[str, str]:
    """Write a leaf certificate for ``names`` and its key; returns (certfile, keyfile)."""
    leaf = ca.issue_cert(*names, not_after=PAST) if expired else ca.issue_cert(*names)
    certfile, keyfile = directory / "leaf.pem", directory / "leaf.key"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def ca_file(ca: trustme.CA, directory: Path, name: str = "ca.pem") -> str:
    path = directory / name
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def self_signed_files(directory: Path) -> tuple[str, str]:
    """A self-signed leaf for localhost (no CA vouches for it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "self.pem", directory / "self.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def encrypted_client_files(ca: trustme.CA, directory: Path, password: bytes) -> tuple[str, str]:
    """A client certificate from ``ca`` with its key encrypted under ``password``."""
    leaf = ca.issue_cert("client@example.org")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    certfile, keyfile = directory / "client.pem", directory / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return str(certfile), str(keyfile)


async def echo_over_tls(port: int, policy: TlsPolicy, host: str = "127.0.0.1") -> str | bytes:
    """Connect with ``policy``, send one message and return its echo."""
    with anyio.fail_after(10):
        connection, _ = await connect(ConnectRequest(f"wss://{host}:{port}/", tls=policy), LIMITS)
        await connection.send(SendMessage("over tls"))
        event = await connection.receive()
        await connection.aclose()
    assert isinstance(event, DataFrame)
    return event.data


async def tls_failure(port: int, policy: TlsPolicy, host: str = "127.0.0.1") -> HandshakeFailed:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        await connect(ConnectRequest(f"wss://{host}:{port}/", tls=policy), LIMITS)
    return caught.value.failed


async def test_strict_accepts_a_matching_certificate(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    context = tls.server_context(*leaf_files(trustme_ca, tmp_path, "127.0.0.1"))
    async with websockets_server(echo, ssl=context) as port:
        policy = TlsPolicy(mode="strict", cafile=ca_file(trustme_ca, tmp_path))
        assert await echo_over_tls(port, policy) == "over tls"


async def test_a_hostname_mismatch_fails_strict_but_passes_device(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    context = tls.server_context(*leaf_files(trustme_ca, tmp_path, "example.org"))
    cafile = ca_file(trustme_ca, tmp_path)
    async with websockets_server(echo, ssl=context) as port:
        failed = await tls_failure(port, TlsPolicy(mode="strict", cafile=cafile))
        assert await echo_over_tls(port, TlsPolicy(mode="device", cafile=cafile)) == "over tls"
    assert failed.kind == "tls"
    assert "mismatch" in failed.message


async def test_an_unknown_ca_fails_strict_and_device_but_not_none(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    context = tls.server_context(*leaf_files(trustme_ca, tmp_path, "127.0.0.1"))
    other = ca_file(trustme.CA(), tmp_path, "other.pem")
    async with websockets_server(echo, ssl=context) as port:
        strict = await tls_failure(port, TlsPolicy(mode="strict", cafile=other))
        device = await tls_failure(port, TlsPolicy(mode="device", cafile=other))
        assert await echo_over_tls(port, TlsPolicy(mode="none")) == "over tls"
    for failed in (strict, device):
        assert failed.kind == "tls"
        assert "unable to get local issuer certificate" in failed.message


async def test_an_expired_certificate_passes_device_only_when_allowed(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    files = leaf_files(trustme_ca, tmp_path, "127.0.0.1", expired=True)
    cafile = ca_file(trustme_ca, tmp_path)
    async with websockets_server(echo, ssl=tls.server_context(*files)) as port:
        device = await tls_failure(port, TlsPolicy(mode="device", cafile=cafile))
        strict = await tls_failure(port, TlsPolicy(mode="strict", cafile=cafile))
        allowed = TlsPolicy(mode="device", cafile=cafile, allow_expired=True)
        assert await echo_over_tls(port, allowed) == "over tls"
    assert "expired" in device.message
    assert "expired" in strict.message


async def test_a_self_signed_leaf_passes_device_and_fails_strict(tmp_path: Path) -> None:
    accepted: list[str] = []

    async def note(ws: ServerConnection) -> None:
        accepted.append(ws.request.path if ws.request else "")
        await echo(ws)

    context = tls.server_context(*self_signed_files(tmp_path))
    async with websockets_server(note, ssl=context) as port:
        strict = await tls_failure(port, TlsPolicy(mode="strict"), host="localhost")
        device = TlsPolicy(mode="device")
        assert await echo_over_tls(port, device, host="localhost") == "over tls"
    assert strict.kind == "tls"
    assert "self-signed" in strict.message
    assert accepted == ["/"]


async def test_a_client_certificate_with_an_encrypted_key(
    trustme_ca: trustme.CA, tmp_path: Path
) -> None:
    cafile = ca_file(trustme_ca, tmp_path)
    server = tls.server_context(*leaf_files(trustme_ca, tmp_path, "127.0.0.1"), client_ca=cafile)
    certfile, keyfile = encrypted_client_files(trustme_ca, tmp_path, b"s3cret")

    def policy(password: str | None) -> TlsPolicy:
        return TlsPolicy(cafile=cafile, certfile=certfile, keyfile=keyfile, password=password)

    async with websockets_server(echo, ssl=server) as port:
        assert await echo_over_tls(port, policy("s3cret")) == "over tls"
        wrong = await tls_failure(port, policy("nope"))
        without = await tls_failure(port, TlsPolicy(cafile=cafile))
    assert wrong.kind == "tls"
    assert wrong.message == f"wrong password for the private key {keyfile!r}"
    # the server refuses after the TLS 1.3 handshake: usually a bare close, or an alert
    assert without.kind in ("protocol", "tls")
    assert "closed" in without.message or "certificate required" in without.message


def test_unusable_files_give_clear_errors(trustme_ca: trustme.CA, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(TlsSetupError, match=r"cannot read CA file .*missing\.pem"):
        tls.client_context(TlsPolicy(cafile=missing))
    with pytest.raises(TlsSetupError, match=r"cannot read .*missing\.pem"):
        tls.client_context(TlsPolicy(certfile=missing))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(TlsSetupError, match="holds no usable certificate"):
        tls.server_context(*leaf_files(trustme_ca, tmp_path, "a"), client_ca=str(not_pem))
    certfile, keyfile = encrypted_client_files(trustme_ca, tmp_path, b"pw")
    with pytest.raises(TlsSetupError, match="is encrypted: a password is needed"):
        tls.server_context(certfile, keyfile)
    other_key = leaf_files(trustme_ca, tmp_path, "b")[1]
    with pytest.raises(TlsSetupError, match="does not belong"):
        tls.server_context(certfile, other_key)


def test_contexts_require_tls_1_2_and_follow_the_policy() -> None:
    strict = tls.client_context(TlsPolicy(mode="strict"))
    device = tls.client_context(TlsPolicy(mode="device", allow_expired=True))
    none = tls.client_context(TlsPolicy(mode="none"))
    assert (strict.check_hostname, strict.verify_mode) == (True, ssl.CERT_REQUIRED)
    assert (device.check_hostname, device.verify_mode) == (False, ssl.CERT_REQUIRED)
    assert (none.check_hostname, none.verify_mode) == (False, ssl.CERT_NONE)
    for context in (strict, device, none):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2


async def test_a_ragged_tls_eof_is_a_plain_eof(trustme_ca: trustme.CA, tmp_path: Path) -> None:
    async def dropper(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    context = tls.server_context(*leaf_files(trustme_ca, tmp_path, "127.0.0.1"))
    async with websockets_server(dropper, ssl=context) as port:
        with anyio.fail_after(10):
            policy = TlsPolicy(cafile=ca_file(trustme_ca, tmp_path))
            connection, _ = await connect(
                ConnectRequest(f"wss://127.0.0.1:{port}/", tls=policy), LIMITS
            )
            await connection.send(SendMessage("bye"))
            lost = await connection.receive()
    assert isinstance(lost, ConnectionLost)
    assert lost.kind in ("eof", "reset")


@pytest.mark.parametrize("per_stage", [True, False], ids=["each stage", "together"])
async def test_tls_and_the_upgrade_share_the_deadline_or_get_one_each(
    trustme_ca: trustme.CA, tmp_path: Path, per_stage: bool
) -> None:
    """A server slow at TLS and slow at the upgrade, each within the deadline, not both."""
    context = tls.server_context(*leaf_files(trustme_ca, tmp_path, "127.0.0.1"))

    async def slow(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(0.4)
        secure = await TLSStream.wrap(stream, server_side=True, ssl_context=context)
        request = await read_head(secure)
        await anyio.sleep(0.4)
        await secure.send(upgrade_response(request))
        await anyio.sleep(1)

    request = ConnectRequest(
        "wss://127.0.0.1:{port}/",
        tls=TlsPolicy(mode="strict", cafile=ca_file(trustme_ca, tmp_path)),
        handshake_timeout=0.6,
        timeout_per_stage=per_stage,
    )
    async with raw_server(slow) as port:
        where = replace(request, url=request.url.format(port=port))
        with anyio.fail_after(5):
            if per_stage:
                connection, done = await connect(where, LIMITS)
                assert done.status == 101
                await connection.abort()
            else:
                with pytest.raises(HandshakeError) as caught:
                    await connect(where, LIMITS)
                assert caught.value.failed.kind == "timeout"
