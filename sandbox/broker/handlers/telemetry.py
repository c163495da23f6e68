"""Client telemetry (KIP-714) as a Kafka 4.0 broker without a telemetry receiver plugin answers
it: the APIs are not advertised (so clients do not ask), and a client that asks anyway gets
Kafka's ClientMetricsManager answer with no subscription: a client instance id, no requested
metrics, the default push interval; pushed metrics are accepted and dropped."""

from __future__ import annotations

import struct
import uuid

import crc32c

DEFAULT_PUSH_INTERVAL_MS = 300_000       # ClientMetricsConfigs.DEFAULT_INTERVAL_MS
TELEMETRY_MAX_BYTES = 1024 * 1024        # telemetry.max.bytes default
ACCEPTED_COMPRESSION = (4, 3, 1, 2)      # zstd, lz4, gzip, snappy: Kafka's order
NO_METRICS = "[]"                        # Java's toString of the empty set of metrics


def _java_uuid_hash(u: uuid.UUID) -> int:
    most, least = struct.unpack(">qq", u.bytes)
    h = most ^ least
    return ((h >> 32) ^ h) & 0xFFFFFFFF


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def subscription_id(client_instance_id: uuid.UUID) -> int:
    """Kafka's: CRC-32C of the metrics set and push interval, XORed with the instance id's hash."""
    crc = crc32c.crc32c(f"{NO_METRICS}{DEFAULT_PUSH_INTERVAL_MS}".encode())
    return _int32(crc ^ _java_uuid_hash(client_instance_id))


def instance_id(requested: uuid.UUID | None) -> uuid.UUID:
    """The client's id, or a new one when it sends the zero uuid (its first request)."""
    if requested is None or requested.int == 0:
        return uuid.uuid4()
    return requested
