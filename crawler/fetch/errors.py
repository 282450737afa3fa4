"""Transport failures translated in one place (httpx's map_httpcore_exceptions is the model)."""

from __future__ import annotations

import errno
import socket
import ssl
import zlib
from typing import TYPE_CHECKING

import aiohttp
import brotli
import httpx

if TYPE_CHECKING:
    pass
from crawler.model import Failure
from crawler.urls import (
    redact_url,
)

_DNS_MESSAGES = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
)


_RESET_MESSAGES = ("disconnect", "reset", "closed", "incomplete", "peer")


TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
    zlib.error,
    brotli.error,
)


class PrivateAddressError(OSError):
    """A host resolved to a private address at connection time (see `PublicOnlyResolver`)."""


def map_exception(exc: BaseException) -> tuple[Failure, str]:
    """Translate an httpx, aiohttp or OS error into a Failure and a readable detail."""
    # The innermost cause is the most precise: an httpx error raised by a transport over
    # aiohttp has the aiohttp error as its cause, and httpx's own wrap OS errors.
    chain = _exception_chain(exc)
    for candidate in reversed(chain):
        failure = _classify(candidate)
        if failure is not None:
            return failure, describe(candidate)
    return Failure.PROTOCOL, describe(exc)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first, without cycles."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        # A suppressed context is still what happened: httpcore raises ConnectError
        # `from None` over anyio's OSError, itself caused by ConnectionRefusedError.
        current = current.__cause__ or current.__context__
    return chain


def _classify(exc: BaseException) -> Failure | None:
    """The Failure one exception stands for, or None if it says nothing specific."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, PrivateAddressError):
        return Failure.PRIVATE_ADDRESS
    if isinstance(exc, socket.gaierror | aiohttp.ClientConnectorDNSError) or _is_dns_text(exc):
        return Failure.DNS
    if isinstance(exc, ssl.SSLError | ssl.CertificateError | aiohttp.ClientSSLError):
        return Failure.TLS
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return Failure.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return Failure.RESET
    if code in (errno.ECONNRESET, errno.EPIPE) or isinstance(exc, _AIOHTTP_RESETS):
        return Failure.RESET
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return Failure.TIMEOUT
    return _classify_httpx(exc)


_AIOHTTP_RESETS = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)


def _classify_httpx(exc: BaseException) -> Failure | None:
    """The Failure of httpx's own exception types."""
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 reports a dropped connection and a malformed response with the same type.
        text = str(exc).lower()
        return Failure.RESET if any(m in text for m in _RESET_MESSAGES) else Failure.PROTOCOL
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return Failure.RESET
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Failure.UNSUPPORTED_SCHEME
    if isinstance(exc, httpx.InvalidURL):
        return Failure.INVALID_URL
    if isinstance(exc, httpx.ConnectError | aiohttp.ClientConnectorError):
        return Failure.CONNECT
    return None


def _is_dns_text(exc: BaseException) -> bool:
    """True if the message is one of the resolvers' "no such host" texts."""
    text = str(exc).lower()
    return any(message in text for message in _DNS_MESSAGES)


def describe(exc: BaseException) -> str:
    """A one-line detail: the exception type and its message, secrets redacted."""
    message = redact_url(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
