"""A hand-rolled Metadata codec (v0-v13). The response encoder is byte-identical to kio's: with
thousands of partitions, kio's generic entity building and writing costs hundreds of milliseconds
per request. The request decoder answers what kio's would, without loading kio's schema of the
version first (a module per version, about 20 ms of a broker's event loop on the first Metadata
request of each version it sees: the first request of nearly every client connection, after
every restart)."""

from __future__ import annotations

import struct
import uuid

from typing import NamedTuple

from .codec import DecodeError, RequestHeader, skip_tags
from .errors import NONE
from .fast import (
    _I16, _I32, _array_len_nullable, _ms, _put_array_len, _put_string, _response_start, _string, request_header,
)
from .registry import FastCodec

METADATA_RESPONSE_VERSIONS = (0, 13)
_PART = struct.Struct(">hii")        # error code, partition index, leader id
_PART_EPOCH = struct.Struct(">hiii")  # + leader epoch (v7+)
_ZERO_UUID = bytes(16)


def _put_ids(out: bytearray, ids, flexible: bool) -> None:
    _put_array_len(out, len(ids), flexible)
    if ids:
        out += struct.pack(f">{len(ids)}i", *ids)


def _uuid_bytes(u) -> bytes:
    if u is None:
        return _ZERO_UUID
    return u.bytes if isinstance(u, uuid.UUID) else uuid.UUID(str(u)).bytes


def encode_metadata_response(correlation_id: int, version: int, body: dict) -> bytes:
    """The whole Metadata response frame (size prefix included) for the handler's dict."""
    if not METADATA_RESPONSE_VERSIONS[0] <= version <= METADATA_RESPONSE_VERSIONS[1]:
        raise ValueError(f"no fast Metadata response encoder for v{version}")
    flexible = version >= 9
    out = _response_start(correlation_id, flexible)
    if version >= 3:
        out += _I32.pack(_ms(body.get("throttle_time", 0)))
    brokers = body["brokers"]
    _put_array_len(out, len(brokers), flexible)
    for b in brokers:
        out += _I32.pack(b["node_id"])
        _put_string(out, b["host"], flexible)
        out += _I32.pack(b["port"])
        if version >= 1:
            _put_string(out, b.get("rack"), flexible)
        if flexible:
            out.append(0)
    if version >= 2:
        _put_string(out, body.get("cluster_id"), flexible)
    if version >= 1:
        out += _I32.pack(body.get("controller_id", -1))
    topics = body["topics"]
    _put_array_len(out, len(topics), flexible)
    for t in topics:
        if isinstance(t, (bytes, bytearray)):   # already encoded by encode_metadata_topic
            out += t
        else:
            _put_topic(out, version, flexible, t)
    if 8 <= version <= 10:
        out += _I32.pack(body.get("cluster_authorized_operations", -2147483648))
    if version >= 13:
        out += _I16.pack(int(body.get("error_code", NONE)))
    if flexible:
        out.append(0)
    _I32.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def encode_metadata_topic(version: int, t: dict) -> bytes:
    """One topic entry of a Metadata response, for callers that cache entries between requests."""
    out = bytearray()
    _put_topic(out, version, version >= 9, t)
    return bytes(out)


def _put_topic(out: bytearray, version: int, flexible: bool, t: dict) -> None:
    epoch = version >= 7
    out += _I16.pack(int(t["error_code"]))
    _put_string(out, t["name"], flexible)
    if version >= 10:
        out += _uuid_bytes(t.get("topic_id"))
    if version >= 1:
        out.append(1 if t.get("is_internal") else 0)
    parts = t["partitions"]
    _put_array_len(out, len(parts), flexible)
    for p in parts:
        if epoch:
            out += _PART_EPOCH.pack(int(p["error_code"]), p["partition_index"], p["leader_id"],
                                    p.get("leader_epoch", -1))
        else:
            out += _PART.pack(int(p["error_code"]), p["partition_index"], p["leader_id"])
        _put_ids(out, p["replica_nodes"], flexible)
        _put_ids(out, p["isr_nodes"], flexible)
        if version >= 5:
            _put_ids(out, p.get("offline_replicas", ()), flexible)
        if flexible:
            out.append(0)
    if version >= 8:
        out += _I32.pack(t.get("topic_authorized_operations", -2147483648))
    if flexible:
        out.append(0)


# ---------------------------------------------------------------- Metadata request decoding

class MetadataRequestTopic(NamedTuple):
    topic_id: uuid.UUID | None   # v10+; None for the zero id (as kio gives it)
    name: str | None             # null from v10 on, when asked for by id


class MetadataRequest(NamedTuple):
    topics: tuple[MetadataRequestTopic, ...] | None   # None (v1+): every topic
    allow_auto_topic_creation: bool                    # v4+, true before
    include_cluster_authorized_operations: bool        # v8-v10
    include_topic_authorized_operations: bool          # v8+


def decode_metadata_request(frame) -> tuple[RequestHeader, MetadataRequest]:
    """Decode a whole Metadata request frame (v0-v13). Raises DecodeError (never anything else)
    on bad bytes."""
    try:
        header, pos, flexible = request_header(frame, 3, METADATA_RESPONSE_VERSIONS, 9)
        version = header.api_version
        n, pos = _array_len_nullable(frame, pos, flexible)
        topics: list[MetadataRequestTopic] | None = None
        if n >= 0:
            topics = []
            for _ in range(n):
                topic_id = None
                if version >= 10:
                    raw = bytes(frame[pos:pos + 16])
                    if len(raw) != 16:
                        raise DecodeError("topic id runs past the end of the frame")
                    pos += 16
                    if raw != _ZERO_UUID:
                        topic_id = uuid.UUID(bytes=raw)
                name, pos = _string(frame, pos, flexible, version >= 10)
                if flexible:
                    pos = skip_tags(frame, pos)
                topics.append(MetadataRequestTopic(topic_id, name))
        elif n < -1 or version < 1:
            raise DecodeError("null or negative length for a non-nullable array")
        auto, cluster_ops, topic_ops = True, False, False
        if version >= 4:
            auto = _bool(frame, pos)
            pos += 1
        if 8 <= version <= 10:
            cluster_ops = _bool(frame, pos)
            pos += 1
        if version >= 8:
            topic_ops = _bool(frame, pos)
            pos += 1
        if flexible:
            pos = skip_tags(frame, pos)
    except DecodeError:
        raise
    except Exception as e:  # struct.error, IndexError, UnicodeDecodeError: all mean garbage
        raise DecodeError(f"cannot decode Metadata request: {type(e).__name__}: {e}") from None
    return header, MetadataRequest(None if topics is None else tuple(topics), auto, cluster_ops, topic_ops)


def _bool(frame, pos: int) -> bool:
    """A boolean byte, 0 or 1 only, as kio's generic decoder (this broker's before) reads it."""
    b = frame[pos]
    if b > 1:
        raise DecodeError(f"a boolean of value {b}")
    return b == 1


#: registered per API key (see sandbox.protocol.registry): Metadata (3) requests and responses
FAST_CODECS = (FastCodec(3, *METADATA_RESPONSE_VERSIONS, decode=decode_metadata_request,
                         encode=encode_metadata_response),)
