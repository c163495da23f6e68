"""Uncompressed Kafka record batches (magic 2), sans-io: encode_batch() and decode_batches().

Small and exact, for control-plane data (the coordinator's `__cluster_metadata` records); the
data-plane log keeps its own zero-copy path. CRC-32C over bytes 21..end, as Kafka defines it.
"""

from __future__ import annotations

import heapq
import struct
import time
from typing import Callable, Iterable, NamedTuple, Sequence

from crc32c import crc32c

MAGIC = 2
_HEAD = struct.Struct(">qiib")          # base offset, batch length, leader epoch, magic
_BODY = struct.Struct(">hiqqqhii")       # attributes .. records count (after the crc)
_CRC = struct.Struct(">I")
HEADER_SIZE = 61
_CODEC_MASK = 0x07
_CONTROL = 0x20
_TRANSACTIONAL = 0x10


class RecordsError(Exception):
    """Bytes that are not a valid uncompressed v2 record batch."""


class Record(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _varint(n: int) -> bytes:
    z = _zigzag(n)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    shift = z = 0
    while True:
        if pos >= end:
            raise RecordsError("truncated varint in a record")
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
        if shift > 63:
            raise RecordsError("varint too long in a record")


def _bytes_field(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def encode_batch(base_offset: int, records: Sequence[tuple[bytes | None, bytes | None]] |
                 Iterable[bytes], timestamp_ms: int | None = None, *,
                 leader_epoch: int = -1) -> bytes:
    """One batch holding `records` ((key, value) pairs or bare values) at consecutive offsets
    from `base_offset`; every record gets the same timestamp (now unless given)."""
    items = [r if isinstance(r, tuple) else (None, r) for r in records]   # (key, value[, headers])
    if not items:
        raise ValueError("a record batch holds at least one record")
    ts = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    body = bytearray()
    for delta, item in enumerate(items):
        key, value = item[0], item[1]
        headers = item[2] if len(item) > 2 else ()
        rec = b"\x00" + _varint(0) + _varint(delta) + _bytes_field(key) + _bytes_field(value) \
            + _varint(len(headers)) + b"".join(_bytes_field(k.encode()) + _bytes_field(v) for k, v in headers)
        body += _varint(len(rec)) + rec
    after_crc = _BODY.pack(0, len(items) - 1, ts, ts, -1, -1, -1, len(items)) + bytes(body)
    length = 4 + 1 + 4 + len(after_crc)   # leader epoch + magic + crc + rest
    return (_HEAD.pack(base_offset, length, leader_epoch, MAGIC) + _CRC.pack(crc32c(after_crc))
            + after_crc)


def decode_batches(data: bytes, *, check_crc: bool = True,
                   decompress: Callable[[int, bytes], bytes] | None = None,
                   aborted: Iterable[tuple[int, int]] | None = None) -> list[Record]:
    """Every record of the whole batches in `data`; a partial batch at the end (a fetch cut at
    max bytes) is skipped, as clients do. Control batches are skipped. Compressed batches need
    `decompress(codec, payload) -> records bytes` (this layer stays pure: the caller brings the
    codecs). `aborted`: a read_committed Fetch's aborted transactions, (producer id, first offset):
    the transactional batches of those transactions are skipped too, as Kafka's consumer does
    (a producer counts as aborted from its transaction's first offset to its abort marker)."""
    out: list[Record] = []
    pending = sorted((first, pid) for pid, first in aborted) if aborted is not None else None
    aborted_pids: set[int] = set()
    view = memoryview(data)
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        base, length, _epoch, magic = _HEAD.unpack_from(data, pos)
        end = pos + 12 + length
        if length < HEADER_SIZE - 12:
            raise RecordsError(f"record batch at byte {pos} has a bad length {length}")
        if end > len(data):
            break
        if magic != MAGIC:
            raise RecordsError(f"record batch at byte {pos} has magic {magic}, not 2")
        (crc,) = _CRC.unpack_from(data, pos + 17)
        if check_crc and crc32c(view[pos + 21:end]) != crc:
            raise RecordsError(f"record batch at offset {base} fails its CRC check")
        attrs, last_delta, base_ts, _max_ts, pid, _pe, _seq, count = _BODY.unpack_from(data, pos + 21)
        if pending is not None and pid >= 0:
            while pending and pending[0][0] <= base + last_delta:
                aborted_pids.add(heapq.heappop(pending)[1])
            if attrs & _CONTROL:
                if _is_abort_marker(data, pos, end, base):
                    aborted_pids.discard(pid)
            elif attrs & _TRANSACTIONAL and pid in aborted_pids:
                pos = end
                continue
        if attrs & _CONTROL:
            pos = end
            continue
        body, p, body_end = data, pos + HEADER_SIZE, end
        if attrs & _CODEC_MASK:
            if decompress is None:
                raise RecordsError(f"record batch at offset {base} is compressed (codec "
                                   f"{attrs & _CODEC_MASK}); only uncompressed batches are read here")
            try:
                body = decompress(attrs & _CODEC_MASK, bytes(view[p:end]))
            except Exception as e:  # the codec library's own error types
                raise RecordsError(f"record batch at offset {base} does not decompress "
                                   f"(codec {attrs & _CODEC_MASK}): {e}") from None
            p, body_end = 0, len(body)
        _read_records(body, p, body_end, base, base_ts, count, out)
        pos = end
    return out


def next_offset(data: bytes, default: int) -> int:
    """The offset after the last whole batch in `data` (`default` when there is none): where a
    consumer fetches next, past control batches and skipped records too, as Kafka's consumers do."""
    pos, out = 0, default
    while len(data) - pos >= HEADER_SIZE:
        base, length, _epoch, _magic = _HEAD.unpack_from(data, pos)
        end = pos + 12 + length
        if length < HEADER_SIZE - 12 or end > len(data):
            break
        (last_delta,) = struct.unpack_from(">i", data, pos + 23)
        out = max(out, base + last_delta + 1)
        pos = end
    return out


def _is_abort_marker(data, pos: int, end: int, base: int) -> bool:
    """A control batch whose record key is (version, type 0 = abort)."""
    marker: list[Record] = []
    _read_records(data, pos + HEADER_SIZE, end, base, 0, 1, marker)
    key = marker[0].key or b""
    return len(key) >= 4 and struct.unpack_from(">h", key, 2)[0] == 0


def _read_records(data, p: int, end: int, base: int, base_ts: int, count: int, out: list[Record]) -> None:
    for _ in range(count):
        size, p = _read_varint(data, p, end)
        rec_end = p + size
        if rec_end > end:
            raise RecordsError(f"a record in the batch at offset {base} overruns it")
        p += 1  # attributes
        ts_delta, p = _read_varint(data, p, rec_end)
        off_delta, p = _read_varint(data, p, rec_end)
        key, p = _read_bytes(data, p, rec_end)
        value, p = _read_bytes(data, p, rec_end)
        n_headers, p = _read_varint(data, p, rec_end)
        headers = []
        for _h in range(max(n_headers, 0)):
            hkey, p = _read_bytes(data, p, rec_end)
            hvalue, p = _read_bytes(data, p, rec_end)
            headers.append(((hkey or b"").decode("utf-8", "replace"), hvalue))
        out.append(Record(base + off_delta, base_ts + ts_delta, key, value, tuple(headers)))
        p = rec_end


def _read_bytes(data: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = _read_varint(data, pos, end)
    if n < 0:
        return None, pos
    if pos + n > end:
        raise RecordsError("a record field runs past the end of its record")
    return bytes(data[pos:pos + n]), pos + n
