"""What `__consumer_offsets` holds and where a group goes: Kafka's partition choice
(Utils.abs(groupId.hashCode()) % partitions) and its OffsetCommitKey (v1) / OffsetCommitValue (v3)
binary schemas, so tools that read the topic see Kafka's format. Pure functions, no I/O."""

from __future__ import annotations

import struct
from typing import NamedTuple

# where a group goes, shared with the supervisor's catalog
from sandbox.client.partitioner import coordinator_partition

partition_for = coordinator_partition   # a group's `__consumer_offsets` partition

OFFSET_COMMIT_KEY_VERSION = 1      # OffsetCommitKey: group, topic, partition
GROUP_METADATA_KEY_VERSION = 2     # GroupMetadataKey: group (not written here; skipped when read)
OFFSET_COMMIT_VALUE_VERSION = 3    # offset, leader epoch, metadata, commit timestamp

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")


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
