"""Inflating a response body within the size cap (gzip, deflate, brotli), whatever the ratio."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Protocol

import brotli

if TYPE_CHECKING:
    pass


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
