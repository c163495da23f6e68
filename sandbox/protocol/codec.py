"""Sans-io codec over kio: request frame -> (header, request entity); response entity -> frame.

Knows header versions (v1/v2 requests, v0/v1 responses, ApiVersions always v0) and nothing else.
"""

from __future__ import annotations

import io
import struct
from functools import cache
from typing import Any, NamedTuple

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

API_VERSIONS_KEY = 18

_HDR = struct.Struct(">hhi")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class DecodeError(Exception):
    """A frame that cannot be decoded as a Kafka request."""


class RequestHeader(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """api_key, api_version, correlation_id from the first 8 bytes of any request frame."""
    if len(frame) < 8:
        raise DecodeError(f"request frame of {len(frame)} bytes is shorter than a request header")
    return _HDR.unpack_from(frame, 0)


@cache
def request_class(api_key: int, api_version: int) -> type:
    """kio's request class, or this sandbox's subclass of it with tagged fields it adds
    (sandbox.protocol.log_dirs)."""
    from .log_dirs import EXTENDED_REQUESTS   # kio's schema modules load on first use, as here
    return EXTENDED_REQUESTS.get((api_key, api_version)) or load_request_schema(api_key, api_version)


@cache
def response_class(api_key: int, api_version: int) -> type:
    """kio's response class, or this sandbox's subclass of it with tagged fields it adds
    (sandbox.protocol.log_dirs)."""
    from .log_dirs import EXTENDED_RESPONSES   # kio's schema modules load on first use, as here
    return EXTENDED_RESPONSES.get((api_key, api_version)) or load_response_schema(api_key, api_version)


@cache
def _reader(cls: type):
    return entity_reader(cls)


@cache
def _writer(cls: type):
    return entity_writer(cls)


def read_uvarint(buf, pos: int) -> tuple[int, int]:
    """An unsigned varint at pos: (value, position after it). DecodeError if truncated or too long."""
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise DecodeError("varint too long")


def skip_tags(buf, pos: int) -> int:
    """The position after a tagged-fields section (flexible versions). DecodeError past the end."""
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos += size
    if pos > len(buf):
        raise DecodeError("tagged fields run past the end of the frame")
    return pos


def read_client_id(frame, flexible: bool) -> tuple[str | None, int]:
    """A request header's client id (after api key, version and correlation id) and the position
    of the body (past the header's tagged fields in a flexible version). DecodeError if it runs
    past the frame; struct.error if the frame is shorter than its length field."""
    (n,) = _I16.unpack_from(frame, 8)
    pos = 10
    if n < -1:
        raise DecodeError("negative client_id length")
    client_id = None
    if n >= 0:
        if pos + n > len(frame):
            raise DecodeError("client_id runs past the end of the frame")
        client_id = str(frame[pos:pos + n], "utf-8", "replace")
        pos += n
    if flexible:
        pos = skip_tags(frame, pos)
    return client_id, pos


def decode_request(frame: bytes) -> tuple[RequestHeader, Any]:
    """Decode a whole request frame. Raises DecodeError (never anything else) on bad bytes."""
    api_key, api_version, correlation_id = peek_header(frame)
    try:
        cls = request_class(api_key, api_version)
    except Exception as e:  # unknown key/version: the caller checks support first
        raise DecodeError(f"no schema for api_key={api_key} version={api_version}") from e
    try:
        client_id, pos = read_client_id(frame, cls.__flexible__)
        body, _used = _reader(cls)(frame, pos)
    except DecodeError:
        raise
    except Exception as e:  # kio raises many kinds on garbage; all mean the same here
        raise DecodeError(f"cannot decode api_key={api_key} v{api_version}: {type(e).__name__}: {e}") from None
    return RequestHeader(api_key, api_version, correlation_id, client_id), body


def encode_request(header: RequestHeader, body: Any) -> bytes:
    """Encode a request frame (used by our own clients and tests)."""
    cls = type(body)
    out = io.BytesIO()
    out.write(_HDR.pack(header.api_key, header.api_version, header.correlation_id))
    if header.client_id is None:
        out.write(_I16.pack(-1))
    else:
        cid = header.client_id.encode()
        out.write(_I16.pack(len(cid)) + cid)
    if cls.__flexible__:
        out.write(b"\x00")
    _writer(cls)(out, body)
    data = out.getvalue()
    return _I32.pack(len(data)) + data


def encode_response(correlation_id: int, body: Any) -> bytes:
    """Encode a response entity into a complete frame (size prefix included)."""
    cls = type(body)
    out = io.BytesIO()
    out.write(b"\x00\x00\x00\x00")
    out.write(_I32.pack(correlation_id))
    if cls.__flexible__ and cls.__api_key__ != API_VERSIONS_KEY:
        out.write(b"\x00")
    _writer(cls)(out, body)
    buf = out.getbuffer()
    _I32.pack_into(buf, 0, len(buf) - 4)
    del buf
    return out.getvalue()


def decode_response(frame: bytes, api_key: int, api_version: int) -> tuple[int, Any]:
    """Decode a response frame body (without size prefix): (correlation_id, entity)."""
    cls = response_class(api_key, api_version)
    (correlation_id,) = _I32.unpack_from(frame, 0)
    pos = 4
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        pos = skip_tags(frame, pos)
    body, _ = _reader(cls)(frame, pos)
    return correlation_id, body
