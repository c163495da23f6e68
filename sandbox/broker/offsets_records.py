"""What `__consumer_offsets` holds and where a group goes: Kafka's partition choice
(Utils.abs(groupId.hashCode()) % partitions) and its OffsetCommitKey (v1) / OffsetCommitValue (v3)
binary schemas, so tools that read the topic see Kafka's format. Pure functions, no I/O."""

from __future__ import annotations

import functools
import struct
from typing import NamedTuple

OFFSET_COMMIT_KEY_VERSION = 1      # OffsetCommitKey: group, topic, partition
GROUP_METADATA_KEY_VERSION = 2     # GroupMetadataKey: group (not written here; skipped when read)
OFFSET_COMMIT_VALUE_VERSION = 3    # offset, leader epoch, metadata, commit timestamp

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")


@functools.lru_cache(maxsize=4096)   # asked several times per request for the same group or id
def java_string_hashcode(s: str) -> int:
    """Java's String.hashCode(): s[0]*31^(n-1) + ... over UTF-16 code units, as a signed int32."""
    h = 0
    data = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def partition_for(group_id: str, partitions: int) -> int:
    """The `__consumer_offsets` partition of a group: Kafka's Utils.abs(hashCode) % partitions
    (Utils.abs maps Integer.MIN_VALUE to 0)."""
    h = java_string_hashcode(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class OffsetKey(NamedTuple):
    group: str
    topic: str
    partition: int


class OffsetValue(NamedTuple):
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return _H.pack(len(b)) + b


def _read_str(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = _H.unpack_from(buf, pos)
    pos += 2
    if n < 0 or pos + n > len(buf):
        raise ValueError("string runs past the record")
    return buf[pos:pos + n].decode("utf-8"), pos + n


def encode_key(group: str, topic: str, partition: int) -> bytes:
    return _H.pack(OFFSET_COMMIT_KEY_VERSION) + _str(group) + _str(topic) + _I.pack(partition)


def encode_value(offset: int, leader_epoch: int, metadata: str, commit_timestamp: int) -> bytes:
    return (_H.pack(OFFSET_COMMIT_VALUE_VERSION) + _Q.pack(offset) + _I.pack(leader_epoch)
            + _str(metadata or "") + _Q.pack(commit_timestamp))


def decode_key(buf: bytes) -> OffsetKey | None:
    """An offset commit key, or None for other record kinds (group metadata) Kafka also writes."""
    (version,) = _H.unpack_from(buf, 0)
    if version not in (0, OFFSET_COMMIT_KEY_VERSION):
        return None
    group, pos = _read_str(buf, 2)
    topic, pos = _read_str(buf, pos)
    (partition,) = _I.unpack_from(buf, pos)
    return OffsetKey(group, topic, partition)


def decode_value(buf: bytes) -> OffsetValue:
    """Any OffsetCommitValue version Kafka wrote (0-3; 4 is read as 3 without its tagged fields)."""
    (version,) = _H.unpack_from(buf, 0)
    (offset,) = _Q.unpack_from(buf, 2)
    pos, epoch = 10, -1
    if version >= 3:
        (epoch,) = _I.unpack_from(buf, pos)
        pos += 4
    if version >= 4:   # flexible: compact string (uvarint length + 1)
        n, shift, b = 0, 0, 0x80
        while b & 0x80:
            b = buf[pos]
            n |= (b & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
        size = max(n - 1, 0)   # 0: null metadata
        metadata, pos = buf[pos:pos + size].decode("utf-8"), pos + size
    else:
        metadata, pos = _read_str(buf, pos)
    (ts,) = _Q.unpack_from(buf, pos)
    return OffsetValue(offset, epoch, metadata, ts)
