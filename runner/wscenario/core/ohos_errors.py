"""The ``{code, message}`` values ``@ohos.net.webSocket`` calls fail with, as the device sends them.

The strings are the runtime ones, which differ from the reference docs in places
("already exist", "Unknown Other Error").
"""

from __future__ import annotations

from wscenario.core.events import CallError

PERMISSION_DENIED = CallError(201, "Permission denied")
"""connect/send/close without ``ohos.permission.INTERNET``."""

PARAMETER_ERROR = CallError(401, "Parameter error")
"""An argument that does not fit the call's overloads."""

URL_ERROR = CallError(2302001, "Websocket url error")
"""connect: not ``ws://``/``wss://``, unparsable, or too long."""

CERT_FILE_MISSING = CallError(2302002, "Websocket certificate file does not exist")
"""connect: ``caPath`` or a ``clientCert`` path does not resolve."""

CONNECTION_EXISTS = CallError(2302003, "Websocket connection already exist")
"""connect on an object whose session is not torn down yet."""

CONNECT_FAILED = CallError(-1, "Websocket connect failed")
"""connect: the connection could not be started (the host name does not resolve)."""

UNKNOWN_ERROR = CallError(2302999, "Websocket Unknown Other Error")
"""close with no session, or when a close was already requested or received."""

SEND_REFUSED = CallError(-1, "Websocket Unknown Other Error")
"""send with no session, or once a close was requested or received (API 11 and later)."""

LEGACY_SEND_REFUSED = UNKNOWN_ERROR
"""What a refused send reports up to API 10."""
