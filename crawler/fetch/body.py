"""Reading a response: its headers once, its body within the size cap (gzip, deflate and
brotli inflated in bounded steps, whatever the ratio), an unwanted body drained or dropped."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Mapping
from typing import Protocol

import brotli
import httpx

from crawler.fetch.errors import TRANSPORT_ERRORS

# An unwanted body up to this size is read and dropped so that its connection is kept alive
# (closing it costs a new TCP, and TLS, handshake for the next URL of that host) ...
DRAIN_MAX_BYTES = 64 * 1024
# ... unless it takes longer than this: a slow error page is cut, not waited for.
DRAIN_MAX_SECONDS = 0.5


class _Inflater(Protocol):
    """A streaming decoder whose output per call is bounded (zlib's `max_length`)."""

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        """Decode more input, returning at most about `max_length` bytes."""
        ...


class _BrotliInflater:
    """brotli with bounded output per call: httpx's decoder would inflate a bomb's read whole."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        """Decode `data`, stopping the output near `max_length` bytes."""
        return bytes(self._decompressor.process(data, output_buffer_limit=max(max_length, 1)))


def _codings(content_encoding: str | None) -> list[str]:
    """The content codings applied, in order, without `identity`."""
    names = (part.strip().lower() for part in (content_encoding or "").split(","))
    return [name for name in names if name and name != "identity"]


def is_stacked(content_encoding: str | None) -> bool:
    """True for more than one content coding (RFC 9110 §8.4 allows it; hardly anyone does it)."""
    return len(_codings(content_encoding)) > 1


def make_inflater(content_encoding: str | None) -> _Inflater | None:
    """A bounded inflater for gzip/deflate/br bodies; None leaves decoding to httpx (identity)."""
    codings = _codings(content_encoding)
    encoding = codings[0] if len(codings) == 1 else ""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # RFC 9110 §8.4.1.2: zlib format; 32 also accepts a gzip header
        return zlib.decompressobj(32 + zlib.MAX_WBITS)
    if encoding == "br":
        return _BrotliInflater()
    return None


async def read_capped(
    response: httpx.Response, encoding: str | None, cap: int
) -> tuple[bytes, bool]:
    """Stream the decoded body up to `cap` bytes; True if more was left unread."""
    inflater = make_inflater(encoding)
    consumed = response.is_stream_consumed  # already read (a mock's content=...)
    if consumed:  # httpx decoded it
        inflater = None
    # Raw bytes when this inflates them or there is nothing to decode (no decoder chain).
    raw = not consumed and (inflater is not None or not encoding)
    stream = response.aiter_raw() if raw else response.aiter_bytes()
    chunks: list[bytes] = []
    size = 0
    async for data in stream:
        # Never inflate more than one byte past the cap, whatever the ratio.
        chunk = data if inflater is None else inflater.decompress(data, cap - size + 1)
        if size + len(chunk) > cap:
            chunks.append(chunk[: cap - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


async def drain(response: httpx.Response, headers: Mapping[str, str]) -> None:
    """Read and drop a small unwanted body (an error page, a redirect's note), so that the
    connection goes back to the pool instead of being closed; give up on a large or slow one.
    """
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > DRAIN_MAX_BYTES):
        return
    if response.is_stream_consumed:  # already read (a mock's content=...)
        return
    size = 0
    with contextlib.suppress(TimeoutError, *TRANSPORT_ERRORS):
        async with asyncio.timeout(DRAIN_MAX_SECONDS):
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > DRAIN_MAX_BYTES:
                    return


def plain_headers(headers: httpx.Headers) -> dict[str, str]:
    """A response's headers as a plain dict of lowercase names, read once.

    httpx.Headers decodes and lowercases every header on every lookup; an answer is looked up
    some ten times. Repeated headers are joined with ", " and decoded as httpx does.
    """
    encoding = headers.encoding
    plain: dict[str, str] = {}
    for raw_name, raw_value in headers.raw:
        name = raw_name.decode(encoding).lower()
        value = raw_value.decode(encoding)
        plain[name] = f"{plain[name]}, {value}" if name in plain else value
    return plain
