"""What `__transaction_state` holds: Kafka's TransactionLogKey (v0: transactional id) and
TransactionLogValue (v0, and v1 with its tagged previous/next producer ids), the transaction
states with Kafka's numbering, and the metadata of one transactional id. Pure, no I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from sandbox.protocol.codec import read_uvarint

from ..offsets_records import _read_str, _str

EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT, COMPLETE_COMMIT, COMPLETE_ABORT, DEAD, PREPARE_EPOCH_FENCE = range(8)
STATE_NAMES = ("Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
               "Dead", "PrepareEpochFence")
NO_PRODUCER_ID = -1
NO_EPOCH = -1
KEY_VERSION = 0

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")
_VALUE0 = struct.Struct(">qhib")   # producer id, epoch, timeout, status


@dataclass(frozen=True)
class TxnMetadata:
    """One transactional id as the coordinator knows it (immutable; a change is a new value)."""
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: int = EMPTY
    partitions: frozenset = field(default_factory=frozenset)   # {(topic, partition)}
    last_update_ms: int = -1
    start_ms: int = -1
    last_producer_epoch: int = NO_EPOCH      # kept in memory (KIP-360 retries), not in the record
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID

    def but(self, **changes) -> TxnMetadata:
        """A copy with `changes` (dataclasses.replace's result, at a third of its cost: it was 5%
        of a transaction's)."""
        if not changes.keys() <= _FIELDS:
            return replace(self, **changes)   # raises its TypeError for an unknown field
        new = object.__new__(TxnMetadata)
        new.__dict__.update(self.__dict__, **changes)
        return new

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


_FIELDS = frozenset(TxnMetadata.__dataclass_fields__)


def encode_key(transactional_id: str) -> bytes:
    return _H.pack(KEY_VERSION) + _str(transactional_id)


def decode_key(buf: bytes) -> str | None:
    """The transactional id, or None for a key of a version this does not know."""
    (version,) = _H.unpack_from(buf, 0)
    if version != KEY_VERSION:
        return None
    s, _ = _read_str(buf, 2)
    return s


def encode_value(m: TxnMetadata) -> bytes:
    """Version 1 (flexible, tagged previous/next producer ids) when either is set, else version 0,
    as Kafka writes them."""
    parts = sorted((t, sorted(ps)) for t, ps in _by_topic(m.partitions).items())
    flexible = m.previous_producer_id != NO_PRODUCER_ID or m.next_producer_id != NO_PRODUCER_ID
    out = bytearray(_H.pack(1 if flexible else 0))
    out += _VALUE0.pack(m.producer_id, m.producer_epoch, m.timeout_ms, m.state)
    if flexible:
        out += _uvarint(len(parts) + 1)
        for topic, ids in parts:
            b = topic.encode("utf-8")
            out += _uvarint(len(b) + 1) + b + _uvarint(len(ids) + 1)
            out += b"".join(_I.pack(i) for i in ids) + b"\x00"
    else:
        out += _I.pack(len(parts))
        for topic, ids in parts:
            out += _str(topic) + _I.pack(len(ids)) + b"".join(_I.pack(i) for i in ids)
    out += _Q.pack(m.last_update_ms) + _Q.pack(m.start_ms)
    if flexible:
        tags = [(0, _Q.pack(m.previous_producer_id)) if m.previous_producer_id != NO_PRODUCER_ID else None,
                (1, _Q.pack(m.next_producer_id)) if m.next_producer_id != NO_PRODUCER_ID else None]
        tags = [t for t in tags if t is not None]
        out += _uvarint(len(tags))
        for tag, data in tags:
            out += _uvarint(tag) + _uvarint(len(data)) + data
    return bytes(out)


def decode_value(transactional_id: str, buf: bytes) -> TxnMetadata:
    """A TransactionLogValue v0 or v1 (ValueError / struct.error / DecodeError when it is not one)."""
    (version,) = _H.unpack_from(buf, 0)
    if version not in (0, 1):
        raise ValueError(f"TransactionLogValue version {version} is not known")
    pid, epoch, timeout, status = _VALUE0.unpack_from(buf, 2)
    pos = 2 + _VALUE0.size
    partitions: set[tuple[str, int]] = set()
    if version == 0:
        (n,) = _I.unpack_from(buf, pos)
        pos += 4
        for _ in range(max(n, 0)):
            topic, pos = _read_str(buf, pos)
            (k,) = _I.unpack_from(buf, pos)
            pos += 4
            for _ in range(k):
                partitions.add((topic, _I.unpack_from(buf, pos)[0]))
                pos += 4
    else:
        n, pos = read_uvarint(buf, pos)
        for _ in range(max(n - 1, 0)):
            ln, pos = read_uvarint(buf, pos)
            topic = buf[pos:pos + ln - 1].decode("utf-8")
            pos += ln - 1
            k, pos = read_uvarint(buf, pos)
            for _ in range(max(k - 1, 0)):
                partitions.add((topic, _I.unpack_from(buf, pos)[0]))
                pos += 4
            pos = _skip_tags(buf, pos, {})
    (last_update,) = _Q.unpack_from(buf, pos)
    (start,) = _Q.unpack_from(buf, pos + 8)
    pos += 16
    tags: dict[int, bytes] = {}
    if version == 1 and pos < len(buf):
        _skip_tags(buf, pos, tags)
    if status not in range(len(STATE_NAMES)):
        raise ValueError(f"transaction status {status} is not known")
    return TxnMetadata(
        transactional_id, pid, epoch, timeout, status, frozenset(partitions), last_update, start,
        previous_producer_id=_Q.unpack(tags[0])[0] if len(tags.get(0, b"")) == 8 else NO_PRODUCER_ID,
        next_producer_id=_Q.unpack(tags[1])[0] if len(tags.get(1, b"")) == 8 else NO_PRODUCER_ID)


def _by_topic(partitions) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for t, p in partitions:
        out.setdefault(t, set()).add(int(p))
    return out


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _skip_tags(buf: bytes, pos: int, into: dict[int, bytes]) -> int:
    n, pos = read_uvarint(buf, pos)
    for _ in range(n):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        into[tag] = bytes(buf[pos:pos + size])
        pos += size
    return pos
