"""Hand-rolled codecs for a follower broker's side of Fetch: the request frame (v4-v12) and the
response (v4-v12), decoded with each partition's records as a view into the one frame buffer.
Byte-compatible with kio's generic codec; the response layout is fast.py's (shared structs)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from .codec import DecodeError, skip_tags
from .fast import (
    _FETCH_PART_V4, _FETCH_PART_V5, _FETCH_TOP_V4, _FETCH_TOP_V7, _HDR, _I16, _I32, _Q, _QQ,
    _array_len, _array_len_nullable, _put_array_len, _put_string, _string,
)

FETCH_REQUEST_VERSIONS = (4, 12)      # topics by name; v13+ name them by id
FETCH_DECODE_VERSIONS = (4, 12)
_REQ_TOP_V4 = struct.Struct(">iiiib")     # replica id, max wait, min bytes, max bytes, isolation
_REQ_TOP_V7 = struct.Struct(">iiiibii")   # + session id, session epoch


class FetchPartition(NamedTuple):
    """One partition to fetch (the request side)."""
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    log_start_offset: int = -1
    last_fetched_epoch: int = -1


def encode_fetch_request(version: int, correlation_id: int, client_id: str | None, *, replica_id: int,
                         max_wait_ms: int, min_bytes: int, max_bytes: int,
                         topics: dict[str, list[FetchPartition]], isolation_level: int = 0,
                         session_id: int = 0, session_epoch: int = -1, rack_id: str = "") -> bytes:
    """A sessionless Fetch request frame (size prefix included), as kio encodes it with no
    forgotten topics and no cluster id."""
    if not FETCH_REQUEST_VERSIONS[0] <= version <= FETCH_REQUEST_VERSIONS[1]:
        raise ValueError(f"no fast Fetch request encoder for v{version}")
    flexible = version >= 12
    out = bytearray(b"\x00\x00\x00\x00")
    out += _HDR.pack(1, version, correlation_id)
    if client_id is None:
        out += _I16.pack(-1)
    else:
        cid = client_id.encode()
        out += _I16.pack(len(cid))
        out += cid
    if flexible:
        out.append(0)
    if version >= 7:
        out += _REQ_TOP_V7.pack(replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level,
                                session_id, session_epoch)
    else:
        out += _REQ_TOP_V4.pack(replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level)
    _put_array_len(out, len(topics), flexible)
    for name, parts in topics.items():
        _put_string(out, name, flexible)
        _put_array_len(out, len(parts), flexible)
        for p in parts:
            out += _I32.pack(p.partition)
            if version >= 9:
                out += _I32.pack(p.current_leader_epoch)
            out += _Q.pack(p.fetch_offset)
            if version >= 12:
                out += _I32.pack(p.last_fetched_epoch)
            if version >= 5:
                out += _Q.pack(p.log_start_offset)
            out += _I32.pack(p.partition_max_bytes)
            if flexible:
                out.append(0)
        if flexible:
            out.append(0)
    if version >= 7:
        _put_array_len(out, 0, flexible)        # forgotten_topics_data
    if version >= 11:
        _put_string(out, rack_id, flexible)
    if flexible:
        out.append(0)                           # cluster_id (tag 0) never set
    _I32.pack_into(out, 0, len(out) - 4)
    return bytes(out)


# ---------------------------------------------------------------- Fetch response decoding

class AbortedTransaction(NamedTuple):
    producer_id: int
    first_offset: int


class PartitionData(NamedTuple):
    partition_index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: tuple[AbortedTransaction, ...] | None
    preferred_read_replica: int
    records: memoryview | None    # a view into the response frame: no copy of the batches


class FetchableTopicResponse(NamedTuple):
    topic: str
    partitions: tuple[PartitionData, ...]


class FetchResponse(NamedTuple):
    throttle_time_ms: int
    error_code: int
    session_id: int
    responses: tuple[FetchableTopicResponse, ...]


def decode_fetch_response(frame, version: int) -> tuple[int, FetchResponse]:
    """(correlation id, response) of a Fetch response frame without its size prefix. Records
    are memoryviews into `frame`. Raises DecodeError (never anything else) on bad bytes."""
    if not FETCH_DECODE_VERSIONS[0] <= version <= FETCH_DECODE_VERSIONS[1]:
        raise ValueError(f"no fast Fetch response decoder for v{version}")
    flexible = version >= 12
    view = memoryview(frame)
    end = len(frame)
    try:
        (correlation_id,) = _I32.unpack_from(frame, 0)
        pos = skip_tags(frame, 4) if flexible else 4
        if version >= 7:
            throttle, error, session = _FETCH_TOP_V7.unpack_from(frame, pos)
            pos += _FETCH_TOP_V7.size
        else:
            (throttle,), error, session = _FETCH_TOP_V4.unpack_from(frame, pos), 0, 0
            pos += _FETCH_TOP_V4.size
        part_struct = _FETCH_PART_V5 if version >= 5 else _FETCH_PART_V4
        ntopics, pos = _array_len(frame, pos, flexible)
        topics = []
        for _ in range(ntopics):
            name, pos = _string(frame, pos, flexible, False)
            nparts, pos = _array_len(frame, pos, flexible)
            parts = []
            for _ in range(nparts):
                fields = part_struct.unpack_from(frame, pos)
                pos += part_struct.size
                if version < 5:
                    fields += (-1,)
                naborted, pos = _array_len_nullable(frame, pos, flexible)
                aborted = None
                if naborted >= 0:
                    aborted = []
                    for _ in range(naborted):
                        aborted.append(AbortedTransaction(*_QQ.unpack_from(frame, pos)))
                        pos += _QQ.size
                        if flexible:
                            pos = skip_tags(frame, pos)
                    aborted = tuple(aborted)
                elif naborted != -1:
                    raise DecodeError("negative aborted transactions length")
                preferred = -1
                if version >= 11:
                    (preferred,) = _I32.unpack_from(frame, pos)
                    pos += 4
                size, pos = _array_len_nullable(frame, pos, flexible)
                records = None
                if size >= 0:
                    if pos + size > end:
                        raise DecodeError("records run past the end of the frame")
                    records = view[pos:pos + size]
                    pos += size
                elif size != -1:
                    raise DecodeError("negative records length")
                if flexible:
                    pos = skip_tags(frame, pos)
                parts.append(PartitionData(*fields, aborted, preferred, records))
            if flexible:
                pos = skip_tags(frame, pos)
            topics.append(FetchableTopicResponse(name, tuple(parts)))
        if flexible:
            pos = skip_tags(frame, pos)
        if pos != end:
            raise DecodeError(f"{end - pos} bytes left over after the Fetch response")
    except DecodeError:
        raise
    except Exception as e:  # struct.error, IndexError, UnicodeDecodeError: all mean garbage
        raise DecodeError(f"cannot decode Fetch response: {type(e).__name__}: {e}") from None
    return correlation_id, FetchResponse(throttle, error, session, tuple(topics))

