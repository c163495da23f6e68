"""Log compaction (cleanup.policy=compact): keep the latest record of every key.

Like Kafka's log cleaner, it works on the closed segments only (never the active one): it finds
each key's latest offset over them, then rewrites each segment without the records a later one
of the same key replaced. Kept records keep their offsets and timestamps, so consumers see gaps,
as with Kafka; records without a key are kept; a batch that loses nothing is kept byte for byte
(compressed ones too). Segments newer than min.compaction.lag.ms are left alone.

Tombstones (null values) go once delete.retention.ms has passed since a cleaning first saw them
(the caller keeps those first-seen times), never by the producer's timestamp, and never while
some batch could not be read (its records might be what the tombstone deletes). The first
segment is never removed: if nothing of it would be left it stays as it is, so the log start
offset never moves.

clean_steps() is a generator that yields between chunks of about a megabyte, holding no file of
its own open at a yield, so the broker runs it (through a Compactor) on its event loop between requests (no thread
races the owner; on Windows nothing it holds blocks a retention delete). It reads through each
segment's owner (SegmentRef.read) and writes `<base>.log.cleaned` files. It changes nothing the
log uses; Compactor.install() (compactor.py) then checks the segments are unchanged and swaps:
`.cleaned` -> `.swap` (fsynced), the old indexes deleted, `.swap` replaces `.log`. A crash after
the `.swap` rename is completed at the next open (complete_swaps); a `.cleaned` file is a
leftover and is deleted.

Compressed batches are expanded through the `decompress(codec, bytes)` the caller hands in (this
package stays free of codec libraries); one that loses records is written back uncompressed.
Without a codec they are kept whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

from .batch import (ATTR_CODEC_MASK, HEADER_SIZE, BatchHeader, StoredRecord, parse_header,
                    read_stored_records, rebuild_batch)
from .config import LogConfig
from .files import fsync_dir, retry, safe_delete

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
STEP_BYTES = 1 << 20      # about this much read or written between two yields

Decompress = Callable[[int, bytes], bytes]


@dataclass(frozen=True)
class SegmentRef:
    """A closed segment as the cleaner saw it (installing checks it is still the same)."""
    base: int
    path: Path
    size: int
    max_timestamp: int
    next_offset: int
    read: Callable[[int, int], bytes] | None = field(default=None, compare=False)  # the owner's read_at
    # the owner's segment object and its mark() when read: a truncation that cut it, or deleted it
    # and wrote a new one at the same base (a follower), is seen even when the sizes match
    segment: Any = field(default=None, compare=False)
    mark: Any = field(default=None, compare=False)


@dataclass
class CleanResult:
    refs: list[SegmentRef]
    outputs: dict[int, Path | None] = field(default_factory=dict)   # base -> .cleaned file; None: delete it
    records_before: int = 0
    records_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    tombstones_seen: dict[int, int] = field(default_factory=dict)   # kept tombstone offset -> first seen (ms)
    tombstones_due_ms: int | None = None   # when a kept tombstone may go: clean again then

    def discard(self) -> None:
        for p in self.outputs.values():
            if p is not None:
                safe_delete(p)
        self.outputs.clear()


def _reader(ref: SegmentRef) -> Callable[[int, int], bytes]:
    if ref.read is not None:
        return ref.read

    def read(pos: int, n: int) -> bytes:
        with open(ref.path, "rb") as f:
            f.seek(pos)
            return f.read(n)
    return read


def _batches(ref: SegmentRef) -> Iterator[tuple[int, BatchHeader, bytes]]:
    """(position, header, whole batch) of every batch of the segment, read through its owner."""
    read = _reader(ref)
    pos = 0
    while pos + HEADER_SIZE <= ref.size:
        head = read(pos, HEADER_SIZE)
        h = parse_header(head)
        if h.magic != 2 or pos + h.size > ref.size:
            raise OSError(f"{ref.path.name} has no whole batch at byte {pos}")
        raw = head + read(pos + HEADER_SIZE, h.size - HEADER_SIZE)
        if len(raw) != h.size:
            raise OSError(f"{ref.path.name} ends inside the batch at byte {pos}")
        yield pos, h, raw
        pos += h.size


def _records(h: BatchHeader, raw: bytes, decompress: Decompress | None) -> list[StoredRecord] | None:
    """The batch's records, or None when they cannot be read here (compressed, no codec)."""
    body = raw[HEADER_SIZE:]
    codec = h.attributes & ATTR_CODEC_MASK
    if codec:
        if decompress is None:
            return None
        body = decompress(codec, body)
    return read_stored_records(body, h.records_count)


def _append_to(path: Path, data: bytes | bytearray) -> None:
    with open(path, "ab") as f:      # opened and closed here: nothing stays open across a yield
        f.write(data)


def clean(refs: list[SegmentRef], config: LogConfig, now_ms: int, decompress: Decompress | None = None,
          seen: dict[int, int] | None = None) -> CleanResult | None:
    """clean_steps() run to the end in one go (tests and tools)."""
    steps = clean_steps(refs, config, now_ms, decompress, seen)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _aborted_check(aborted) -> Callable[[BatchHeader], bool]:
    """True for a transactional data batch of an aborted transaction (Kafka's cleaner drops them)."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for a in aborted or ():
        ranges.setdefault(a.producer_id, []).append((a.first_offset, a.last_offset))

    def check(h: BatchHeader) -> bool:
        if not ranges or h.is_control or not h.is_transactional:
            return False
        return any(first <= h.base_offset < last for first, last in ranges.get(h.producer_id, ()))
    return check


def clean_steps(refs: list[SegmentRef], config: LogConfig, now_ms: int, decompress: Decompress | None = None,
                seen: dict[int, int] | None = None, aborted=(),
                producers_last: frozenset[int] = frozenset()) -> Generator[None, None, CleanResult | None]:
    """Write the compacted copies of `refs` (oldest first, all closed, the first being the log's
    first segment). Returns None without refs; otherwise a CleanResult, which the owner installs
    (Compactor.install) even when it changes no segment (the bookkeeping moves on).
    `seen`: tombstone offset -> when a cleaning first saw it (ms). On any error, and when closed
    early, the files written so far are removed. `aborted`: the log's AbortedTxn entries; the data
    of aborted transactions is removed (markers stay: read_committed readers skip them).
    `producers_last`: the last offsets of each idempotent producer's last batch. Its records are
    cleaned as any, but the batch stays, with no record if none is left (Kafka's cleaner keeps it
    so: RETAIN_EMPTY), so producer state rebuilt from the log without a snapshot still knows each
    producer's epoch and sequence: a marker alone would say its epoch with no sequence, and its
    next batch would be refused."""
    if not refs:
        return None
    is_aborted = _aborted_check(aborted)
    seen = seen or {}
    result = CleanResult(refs)
    current: Path | None = None
    try:
        # pass 1: each key's latest offset over the closed segments
        latest: dict[bytes, int] = {}
        holds_value: dict[bytes, bool] = {}    # the key's latest record is a value, not a tombstone
        unreadable = False
        budget = 0
        for ref in refs:
            for _pos, h, raw in _batches(ref):
                budget += h.size
                if h.is_control or is_aborted(h):
                    continue
                recs = _records(h, raw, decompress)
                if recs is None:
                    unreadable = True
                    continue
                for r in recs:
                    if r.key is not None:
                        latest[r.key] = h.base_offset + r.offset_delta
                        holds_value[r.key] = r.value is not None
                if budget >= STEP_BYTES:
                    budget = 0
                    yield
        # pass 2: each segment without what a later record replaced
        for i, ref in enumerate(refs):
            current = ref.path.with_name(ref.path.name + CLEANED_SUFFIX)
            safe_delete(current)
            pending = bytearray()
            started = False         # the .cleaned file is begun at the first change only
            written = 0
            for pos, h, raw in _batches(ref):
                result.bytes_before += h.size
                last_of_producer = h.producer_id >= 0 and h.last_offset in producers_last
                dropped = is_aborted(h)
                if dropped and last_of_producer and h.records_count == 0:
                    dropped = False   # emptied by an earlier cleaning already: stays as it is
                recs = None if h.is_control or dropped else _records(h, raw, decompress)
                if dropped:
                    result.records_before += h.records_count
                    data = rebuild_batch(h, []) if last_of_producer else b""
                    if not started:
                        started = True
                        written += yield from _copy_prefix(_reader(ref), pos, current)
                elif recs is None:   # control batches, or records this cleaner cannot read
                    data = raw
                    result.records_before += h.records_count
                    result.records_after += h.records_count
                else:
                    kept = []
                    for r in recs:
                        offset = h.base_offset + r.offset_delta
                        if r.key is not None and latest.get(r.key) != offset:
                            continue   # a later record of this key replaces it
                        if r.key is not None and r.value is None:   # a tombstone, the key's latest
                            first = seen.get(offset, now_ms)
                            if not unreadable and first + config.delete_retention_ms <= now_ms:
                                continue   # delete.retention.ms since a cleaning first saw it
                            result.tombstones_seen[offset] = first
                            due = first + config.delete_retention_ms
                            if result.tombstones_due_ms is None or due < result.tombstones_due_ms:
                                result.tombstones_due_ms = due
                        kept.append(r)
                    result.records_before += len(recs)
                    result.records_after += len(kept)
                    if len(kept) == len(recs) and (recs or last_of_producer):
                        data = raw          # nothing removed: the batch stays byte for byte
                    else:
                        data = rebuild_batch(h, kept) if kept or last_of_producer else b""
                        if not started:
                            started = True
                            written += yield from _copy_prefix(_reader(ref), pos, current)
                if started and data:
                    pending += data
                    written += len(data)
                    if len(pending) >= STEP_BYTES:
                        _append_to(current, pending)
                        pending.clear()
                        yield
            if started and pending:
                _append_to(current, pending)
            if not started:
                result.bytes_after += ref.size
            elif written == 0 and i == 0:
                # the first segment is never removed (it holds the log start offset): it keeps one
                # record, one whose key ends on a value later in the log, so reading it changes
                # nobody's final view; if there is none it stays as it was
                anchor = _anchor(ref, latest, holds_value, decompress)
                if anchor is None:
                    safe_delete(current)
                    result.bytes_after += ref.size
                else:
                    _append_to(current, anchor)
                    with open(current, "rb+") as f:
                        os.fsync(f.fileno())
                    result.outputs[ref.base] = current
                    result.bytes_after += len(anchor)
                    result.records_after += 1
            elif written == 0:
                safe_delete(current)
                result.outputs[ref.base] = None     # nothing of it is left: the segment goes
            else:
                with open(current, "rb+") as f:
                    os.fsync(f.fileno())
                result.outputs[ref.base] = current
                result.bytes_after += written
            current = None
            yield
    except BaseException:
        if current is not None:
            safe_delete(current)
        result.discard()
        raise
    return result


def _anchor(ref: SegmentRef, latest: dict[bytes, int], holds_value: dict[bytes, bool],
            decompress: Decompress | None) -> bytes | None:
    """A one-record batch of the segment's last record whose key's latest record (elsewhere)
    holds a value, or None."""
    found = None
    for _pos, h, raw in _batches(ref):
        recs = None if h.is_control else _records(h, raw, decompress)
        for r in recs or ():
            if r.key is not None and holds_value.get(r.key) and latest.get(r.key) != h.base_offset + r.offset_delta:
                found = (h, r)
    return None if found is None else rebuild_batch(found[0], [found[1]])


def _copy_prefix(read: Callable[[int, int], bytes], n: int, out: Path) -> Generator[None, None, int]:
    """Copy the first n bytes of a segment (batches kept unchanged before the first change)."""
    done = 0
    while done < n:
        chunk = read(done, min(STEP_BYTES, n - done))
        if not chunk:
            raise OSError(f"{out.name}: the segment is shorter than {n} bytes")
        _append_to(out, chunk)
        done += len(chunk)
        if done < n:
            yield
    return n


def check_cleaned(path: Path, ref: SegmentRef) -> None:
    """Before a swap: the file holds whole batches with offsets inside the segment's range."""
    size = os.path.getsize(path)
    last = ref.base - 1
    probe = SegmentRef(ref.base, path, size, ref.max_timestamp, ref.next_offset)
    end = 0
    for pos, h, _raw in _batches(probe):
        if h.base_offset <= last or h.next_offset > ref.next_offset:
            raise OSError(f"{path.name}: batch at byte {pos} has offsets outside its segment")
        last = h.last_offset
        end = pos + h.size
    if end != size:
        raise OSError(f"{path.name}: {size - end} bytes after its last whole batch")


def complete_swaps(directory: Path, listing: list[str]) -> bool:
    """At open: finish swaps a crash interrupted (`<base>.log.swap` replaces `<base>.log`, whose
    stale indexes go first) and delete `.cleaned` leftovers. True if anything was done."""
    did = False
    for name in listing:
        p = Path(directory) / name
        if name.endswith(".log" + SWAP_SUFFIX):
            target = p.with_name(name[:-len(SWAP_SUFFIX)])
            stem = target.with_suffix("")
            for idx in (stem.with_suffix(".index"), stem.with_suffix(".timeindex")):
                safe_delete(idx)
            retry(lambda: os.replace(p, target))
            did = True
        elif name.endswith(CLEANED_SUFFIX):
            safe_delete(p)
            did = True
    if did:
        fsync_dir(Path(directory))
    return did


def swap_in(cleaned: Path, log_path: Path) -> None:
    """`.cleaned` -> `.swap` -> `.log`, with the old indexes deleted before the log is replaced
    (a crash between leaves the `.swap` for complete_swaps and no stale index)."""
    swap = log_path.with_name(log_path.name + SWAP_SUFFIX)
    retry(lambda: os.replace(cleaned, swap))
    fsync_dir(log_path.parent)
    stem = log_path.with_suffix("")
    for idx in (stem.with_suffix(".index"), stem.with_suffix(".timeindex")):
        safe_delete(idx)
    fsync_dir(log_path.parent)
    retry(lambda: os.replace(swap, log_path))
