"""Hand-rolled codecs for the data-plane hot path: Produce requests (v3-v11) and Produce (v3-v11)
and Fetch (v4-v12) responses, byte-identical to kio's generic codec but without per-field Python
dispatch or copies of record payloads. Sans-io: bytes and plain values in, bytes out.
"""

from __future__ import annotations

import datetime
import struct
import uuid
from typing import Any, NamedTuple

from .codec import DecodeError, RequestHeader, read_client_id, read_uvarint, skip_tags
from .registry import FastCodec
from .errors import NONE

PRODUCE_REQUEST_VERSIONS = (3, 12)
PRODUCE_RESPONSE_VERSIONS = (3, 12)
FETCH_RESPONSE_VERSIONS = (4, 17)

_HDR = struct.Struct(">hhi")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I32I16 = struct.Struct(">ih")
_Q = struct.Struct(">q")
_QQ = struct.Struct(">qq")
_PROD_PART_V3 = struct.Struct(">ihqq")      # index, error, base offset, log append time
_PROD_PART_V5 = struct.Struct(">ihqqq")     # + log start offset
_FETCH_TOP_V4 = struct.Struct(">i")         # throttle
_FETCH_TOP_V7 = struct.Struct(">ihi")       # throttle, error, session id
_FETCH_PART_V4 = struct.Struct(">ihqq")     # index, error, high watermark, last stable offset
_FETCH_PART_V5 = struct.Struct(">ihqqq")    # + log start offset
_NULL_I32 = _I32.pack(-1)
_NULL_I16 = _I16.pack(-1)


# ---------------------------------------------------------------- Produce request decoding

class PartitionProduceData(NamedTuple):
    index: int
    records: memoryview | None   # a view into the request frame: no copy of the batches


class TopicProduceData(NamedTuple):
    name: str
    partition_data: tuple[PartitionProduceData, ...]


class ProduceRequest(NamedTuple):
    transactional_id: str | None
    acks: int
    timeout: datetime.timedelta
    topic_data: tuple[TopicProduceData, ...]


def _string(buf, pos: int, flexible: bool, nullable: bool) -> tuple[str | None, int]:
    if flexible:
        n, pos = read_uvarint(buf, pos)
        n -= 1
    else:
        (n,) = _I16.unpack_from(buf, pos)
        pos += 2
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise DecodeError("null or negative length for a non-nullable string")
    end = pos + n
    if end > len(buf):
        raise DecodeError("string runs past the end of the frame")
    return str(buf[pos:end], "utf-8"), end


def _array_len_nullable(buf, pos: int, flexible: bool) -> tuple[int, int]:
    """An array's (or bytes') length, -1 for null."""
    if flexible:
        n, pos = read_uvarint(buf, pos)
        return n - 1, pos
    (n,) = _I32.unpack_from(buf, pos)
    return n, pos + 4


def _array_len(buf, pos: int, flexible: bool) -> tuple[int, int]:
    n, pos = _array_len_nullable(buf, pos, flexible)
    if n < 0:
        raise DecodeError("null or negative length for a non-nullable array")
    return n, pos


def request_header(frame, api_key: int, versions: tuple[int, int], flexible_from: int
                   ) -> tuple[RequestHeader, int, bool]:
    """The header of a request frame of `api_key` in `versions` (v1, or v2 from `flexible_from`
    on): (header, position of the body, flexible). DecodeError if it is another key or version,
    or bad; struct.error and IndexError escape (the callers turn them into DecodeError)."""
    key, version, correlation_id = _HDR.unpack_from(frame, 0)
    if key != api_key or not versions[0] <= version <= versions[1]:
        raise DecodeError(f"not a request of api_key={api_key} v{versions[0]}-v{versions[1]}: "
                          f"api_key={key} v{version}")
    flexible = version >= flexible_from
    client_id, pos = read_client_id(frame, flexible)
    return RequestHeader(key, version, correlation_id, client_id), pos, flexible


def decode_produce_request(frame) -> tuple[RequestHeader, ProduceRequest]:
    """Decode a whole Produce request frame (v3-v11). The records of each partition are
    memoryviews into `frame`. Raises DecodeError (never anything else) on bad bytes."""
    try:
        header, pos, flexible = request_header(frame, 0, PRODUCE_REQUEST_VERSIONS, 9)
        view = memoryview(frame)
        transactional_id, pos = _string(frame, pos, flexible, True)
        acks, timeout_ms = struct.unpack_from(">hi", frame, pos)
        pos += 6
        ntopics, pos = _array_len(frame, pos, flexible)
        topics = []
        for _ in range(ntopics):
            name, pos = _string(frame, pos, flexible, False)
            nparts, pos = _array_len(frame, pos, flexible)
            parts = []
            for _ in range(nparts):
                (index,) = _I32.unpack_from(frame, pos)
                pos += 4
                if flexible:
                    size, pos = read_uvarint(frame, pos)
                    size -= 1
                else:
                    (size,) = _I32.unpack_from(frame, pos)
                    pos += 4
                if size < 0:
                    if size != -1:
                        raise DecodeError("negative records length")
                    records = None
                else:
                    if pos + size > len(frame):
                        raise DecodeError("records run past the end of the frame")
                    records = view[pos:pos + size]
                    pos += size
                if flexible:
                    pos = skip_tags(frame, pos)
                parts.append(PartitionProduceData(index, records))
            if flexible:
                pos = skip_tags(frame, pos)
            topics.append(TopicProduceData(name, tuple(parts)))
        if flexible:
            pos = skip_tags(frame, pos)
    except DecodeError:
        raise
    except Exception as e:  # struct.error, IndexError, UnicodeDecodeError: all mean garbage
        raise DecodeError(f"cannot decode Produce request: {type(e).__name__}: {e}") from None
    request = ProduceRequest(transactional_id, acks, datetime.timedelta(milliseconds=timeout_ms),
                             tuple(topics))
    return header, request


# ---------------------------------------------------------------- response encoding helpers

def _put_uvarint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_string(out: bytearray, s: str | None, flexible: bool) -> None:
    if s is None:
        if flexible:
            out.append(0)
        else:
            out += _NULL_I16
        return
    b = s.encode()
    if flexible:
        _put_uvarint(out, len(b) + 1)
    else:
        out += _I16.pack(len(b))
    out += b


def _put_array_len(out: bytearray, n: int | None, flexible: bool) -> None:
    if flexible:
        _put_uvarint(out, 0 if n is None else n + 1)
    else:
        out += _NULL_I32 if n is None else _I32.pack(n)


def _ms(v: Any) -> int:
    if v is None:
        return -1
    if isinstance(v, datetime.timedelta):
        return (v.days * 86_400 + v.seconds) * 1000 + v.microseconds // 1000
    if isinstance(v, datetime.datetime):
        td = v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (td.days * 86_400 + td.seconds) * 1000 + td.microseconds // 1000
    return int(v)


def _response_start(correlation_id: int, flexible: bool) -> bytearray:
    out = bytearray(b"\x00\x00\x00\x00")
    out += _I32.pack(correlation_id)
    if flexible:
        out.append(0)
    return out


# ---------------------------------------------------------------- Produce response

def encode_produce_response(correlation_id: int, version: int, body: dict) -> bytes:
    """The whole Produce response frame (size prefix included) for the handler's dict."""
    if not PRODUCE_RESPONSE_VERSIONS[0] <= version <= PRODUCE_RESPONSE_VERSIONS[1]:
        raise ValueError(f"no fast Produce response encoder for v{version}")
    flexible = version >= 9
    out = _response_start(correlation_id, flexible)
    responses = body["responses"]
    _put_array_len(out, len(responses), flexible)
    for t in responses:
        _put_string(out, t["name"], flexible)
        parts = t["partition_responses"]
        _put_array_len(out, len(parts), flexible)
        for p in parts:
            lat = p.get("log_append_time", -1)
            lat = -1 if lat is None else _ms(lat)
            if lat < 0:
                lat = -1
            if version >= 5:
                out += _PROD_PART_V5.pack(p["index"], int(p["error_code"]), p["base_offset"], lat,
                                          p.get("log_start_offset", -1))
            else:
                out += _PROD_PART_V3.pack(p["index"], int(p["error_code"]), p["base_offset"], lat)
            if version >= 8:
                errs = p.get("record_errors") or ()
                _put_array_len(out, len(errs), flexible)
                for e in errs:
                    out += _I32.pack(e["batch_index"])
                    _put_string(out, e.get("batch_index_error_message"), flexible)
                    if flexible:
                        out.append(0)
                _put_string(out, p.get("error_message"), flexible)
            if flexible:   # v10+: current_leader (tag 0) on a not-the-leader error (KIP-951)
                _put_tagged(out, [(0, _leader_and_epoch(p.get("current_leader")))] if version >= 10 else [])
        if flexible:
            out.append(0)
    out += _I32.pack(_ms(body.get("throttle_time", 0)))
    if flexible:   # v10+: node_endpoints (tag 0), the addresses of the leaders named
        _put_tagged(out, [(0, _node_endpoints(body.get("node_endpoints")))] if version >= 10 else [])
    _I32.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def _put_tagged(out: bytearray, fields: list[tuple[int, bytes | None]]) -> None:
    """A tagged-field section: the fields given (tag, encoded value), those None left out."""
    fields = [(tag, data) for tag, data in fields if data is not None]
    _put_uvarint(out, len(fields))
    for tag, data in fields:
        _put_uvarint(out, tag)
        _put_uvarint(out, len(data))
        out += data


def _leader_and_epoch(leader: dict | None) -> bytes | None:
    """LeaderIdAndEpoch (KIP-951): leader id, leader epoch, no tagged fields."""
    if not leader:
        return None
    return _I32.pack(leader["leader_id"]) + _I32.pack(leader["leader_epoch"]) + b"\x00"


def _node_endpoints(nodes: list | None) -> bytes | None:
    """NodeEndpoints (KIP-951): node id, host, port, rack of each leader named."""
    if not nodes:
        return None
    out = bytearray()
    _put_array_len(out, len(nodes), True)
    for n in nodes:
        out += _I32.pack(n["node_id"])
        _put_string(out, n["host"], True)
        out += _I32.pack(n["port"])
        _put_string(out, n.get("rack"), True)
        out.append(0)
    return bytes(out)


# ---------------------------------------------------------------- Fetch response

def _uuid16(u: Any) -> bytes:
    if u is None:
        return bytes(16)
    return u.bytes if isinstance(u, uuid.UUID) else uuid.UUID(str(u)).bytes


def encode_fetch_response(correlation_id: int, version: int, body: dict) -> list:
    """The Fetch response frame as a list of parts to send back to back: bytearrays of encoded
    fields, and each partition's `records` object passed through as is (anything with len()
    that is a buffer or has readinto(); see join_parts). The first part holds the size prefix."""
    if not FETCH_RESPONSE_VERSIONS[0] <= version <= FETCH_RESPONSE_VERSIONS[1]:
        raise ValueError(f"no fast Fetch response encoder for v{version}")
    flexible = version >= 12
    out = _response_start(correlation_id, flexible)
    parts: list = [out]
    throttle = _ms(body.get("throttle_time", 0))
    if version >= 7:
        out += _FETCH_TOP_V7.pack(throttle, int(body.get("error_code", NONE)), body.get("session_id", 0))
    else:
        out += _FETCH_TOP_V4.pack(throttle)
    responses = body["responses"]
    _put_array_len(out, len(responses), flexible)
    for t in responses:
        if version >= 13:
            out += _uuid16(t.get("topic_id"))
        else:
            _put_string(out, t["topic"], flexible)
        plist = t["partitions"]
        _put_array_len(out, len(plist), flexible)
        for p in plist:
            if version >= 5:
                out += _FETCH_PART_V5.pack(p["partition_index"], int(p["error_code"]), p["high_watermark"],
                                           p.get("last_stable_offset", -1), p.get("log_start_offset", -1))
            else:
                out += _FETCH_PART_V4.pack(p["partition_index"], int(p["error_code"]), p["high_watermark"],
                                           p.get("last_stable_offset", -1))
            aborted = p.get("aborted_transactions")
            _put_array_len(out, None if aborted is None else len(aborted), flexible)
            for a in aborted or ():
                out += _QQ.pack(a["producer_id"], a["first_offset"])
                if flexible:
                    out.append(0)
            if version >= 11:
                out += _I32.pack(p.get("preferred_read_replica", -1))
            records = p.get("records")
            if records is None:
                if flexible:
                    out.append(0)
                else:
                    out += _NULL_I32
            else:
                n = len(records)
                if flexible:
                    _put_uvarint(out, n + 1)
                else:
                    out += _I32.pack(n)
                if n:
                    if n <= 4096 and not hasattr(records, "readinto"):
                        out += records
                    else:
                        parts.append(records)
                        out = bytearray()
                        parts.append(out)
            if flexible:   # v16+: current_leader (tag 1) on a not-the-leader error (KIP-951);
                # diverging_epoch and snapshot_id are never set
                _put_tagged(out, [(1, _leader_and_epoch(p.get("current_leader")))] if version >= 16 else [])
        if flexible:
            out.append(0)
    if flexible:   # v16+: node_endpoints (tag 0)
        _put_tagged(out, [(0, _node_endpoints(body.get("node_endpoints")))] if version >= 16 else [])
    size = sum(len(p) for p in parts) - 4
    _I32.pack_into(parts[0], 0, size)
    if not out:
        parts.pop()
    return parts


def join_parts(parts: list) -> bytearray:
    """One buffer holding every part back to back: buffers are copied, objects with
    readinto(memoryview) fill their own slot (e.g. file slices read straight into place)."""
    total = sum(len(p) for p in parts)
    buf = bytearray(total)
    view = memoryview(buf)
    pos = 0
    for p in parts:
        n = len(p)
        readinto = getattr(p, "readinto", None)
        if readinto is not None:
            readinto(view[pos:pos + n])
        else:
            view[pos:pos + n] = p
        pos += n
    view.release()
    return buf


#: registered per API key (see sandbox.protocol.registry): Produce (0) requests and responses,
#: Fetch (1) responses; Produce requests keep views of the frame that the handler stamps
FAST_CODECS = (
    FastCodec(0, max(PRODUCE_REQUEST_VERSIONS[0], PRODUCE_RESPONSE_VERSIONS[0]),
              min(PRODUCE_REQUEST_VERSIONS[1], PRODUCE_RESPONSE_VERSIONS[1]),
              decode=decode_produce_request, encode=encode_produce_response, frame_views=True),
    FastCodec(1, *FETCH_RESPONSE_VERSIONS, encode=encode_fetch_response),
)
