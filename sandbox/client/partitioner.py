"""Which partition a keyed record goes to: Kafka's Java default (murmur2 of the key, made
positive, modulo the partition count), so `sandbox produce` puts a key where a Java, Spring or
kafka-python producer would; and which `__consumer_offsets` / `__transaction_state` partition a
group or transactional id belongs to (Kafka's abs(String.hashCode) modulo the partition count),
which both the broker's coordinators and the supervisor's catalog need."""

from __future__ import annotations

import functools

OFFSETS_TOPIC = "__consumer_offsets"   # the group coordinators' topic
TXN_TOPIC = "__transaction_state"     # the transaction coordinators'

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c) as a signed 32-bit int, like org.apache.kafka.common.utils.Utils."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    tail = data[n4 * 4:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@functools.lru_cache(maxsize=4096)   # asked several times per request for the same group or id
def java_string_hashcode(s: str) -> int:
    """Java's String.hashCode(): s[0]*31^(n-1) + ... over UTF-16 code units, as a signed int32."""
    h = 0
    data = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def coordinator_partition(key: str, partitions: int) -> int:
    """The `__consumer_offsets` (or `__transaction_state`) partition of a group (or transactional
    id): Kafka's Utils.abs(hashCode) % partitions (Utils.abs maps Integer.MIN_VALUE to 0)."""
    h = java_string_hashcode(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions
