"""One log segment: the `%020d.log` file plus its sparse offset index (`.index`) and time index
(`.timeindex`), kept in memory and written at roll/flush/close. No mmap; handles closed on close().
"""
from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Callable

import crc32c

from .batch import CRC_START, HEADER_SIZE, MIN_BATCH_LENGTH, BatchHeader, parse_header
from .files import atomic_write, remove_or_empty, safe_delete, safe_delete_later

_IDX = struct.Struct(">II")
_TIDX = struct.Struct(">qI")
SCAN_CHUNK = 4 * 1024 * 1024
# Every read and write names its position (pread/pwrite where the OS has them): the descriptor's
# shared file offset is never relied on, because a dup of it handed to sendfile moves that offset
# while a Fetch reply is being sent (asyncio seeks the file after sending).
_POSITIONED = hasattr(os, "pread") and hasattr(os, "pwrite")
_PREADV = hasattr(os, "preadv")


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class Segment:
    """A segment's file handle, size, offset range, max timestamp and in-memory indexes."""

    # the log's event callback (set by recovery.open_segments): says an index rebuilt at a read.
    # Only indexes loaded from files can disagree with their log; others are built from its batches.
    on_event: Callable[[str, dict], None] | None = None

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int) -> None:
        self.base_offset = base_offset
        stem = Path(directory) / segment_name(base_offset)
        self.log_path = stem.with_suffix(".log")
        self.index_path = stem.with_suffix(".index")
        self.timeindex_path = stem.with_suffix(".timeindex")
        self.txnindex_path = stem.with_suffix(".txnindex")   # transactions.TxnIndex's, removed with the segment
        self.index_interval_bytes = index_interval_bytes
        self.cuts = 0   # times truncate() cut the file: with next_offset, which bytes it holds
        self.tail_past_size = False   # a failed write left bytes past size that could not be cut yet
        # opened, or made, with one call (a new partition's segment took three opens); O_BINARY:
        # Windows would otherwise translate line ends in what FileIO reads and writes
        self._f = open(os.open(self.log_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666),
                       "r+b", buffering=0)
        self.size = os.fstat(self._f.fileno()).st_size
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1  # last offset of the batch holding max_timestamp
        self.roll_base_ms: int | None = None
        self.reset_indexes()
        # an empty segment's indexes are empty and need no files: nothing to write at close
        self.index_dirty = self.size > 0

    # ---------------------------------------------------------------- indexes

    def reset_indexes(self) -> None:
        self.idx_rel = array("I")
        self.idx_pos = array("I")
        self.tidx_ts = array("q")
        self.tidx_rel = array("I")
        self.bytes_since_index = 0
        self.index_dirty = True

    def _maybe_index(self, pos: int, h: BatchHeader, size: int) -> None:
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp = h.max_timestamp
            self.offset_of_max_timestamp = h.last_offset
        if self.bytes_since_index > self.index_interval_bytes:
            self.idx_rel.append(h.last_offset - self.base_offset)
            self.idx_pos.append(pos)
            self._maybe_time_entry()
            self.bytes_since_index = 0
        self.bytes_since_index += size
        self.index_dirty = True

    def _maybe_time_entry(self) -> None:
        if self.max_timestamp >= 0 and (not self.tidx_ts or self.max_timestamp > self.tidx_ts[-1]):
            self.tidx_ts.append(self.max_timestamp)
            self.tidx_rel.append(self.offset_of_max_timestamp - self.base_offset)

    def _floor(self, offset: int) -> tuple[int, BatchHeader | None]:
        """(position, header) of the batch the sparse index names for `offset`: the one at or before
        the batch holding it (position 0 and None when no entry is below it; that header is not
        read here). The entry used is checked against the header at its position, which the caller
        walks from anyway: it must be a whole batch holding the entry's offset (an entry names its
        batch's last offset), else the index is rebuilt from the batches (see _index_fault) and
        its floor taken again. Open checks only the last entry of a loaded index (recovery.py); an
        inner entry off a batch boundary (bit rot, a half-written index, another tool's) had reads
        start mid-batch: nothing found, so a consumer stuck below the log end, or the next
        segment's first batch, offsets silently skipped. Kafka's sanity check is as shallow, but
        there a read from a bad position fails with a CorruptRecordException instead."""
        i = bisect_right(self.idx_rel, offset - self.base_offset) - 1
        if i < 0:
            return 0, None
        pos = self.idx_pos[i]
        h = self._entry_header(i)
        if h is None:
            i = bisect_right(self.idx_rel, offset - self.base_offset) - 1
            return (self.idx_pos[i] if i >= 0 else 0), None
        return pos, h

    def _entry_header(self, i: int) -> BatchHeader | None:
        """The header at offset-index entry i's position when it is a whole batch holding the
        entry's offset; None after _index_fault rebuilt the indexes when it is not."""
        h = self.header_at(self.idx_pos[i])
        if h is None or not h.base_offset - self.base_offset <= self.idx_rel[i] <= h.last_offset - self.base_offset:
            self._index_fault(f"an index entry (offset {self.base_offset + self.idx_rel[i]}, position "
                              f"{self.idx_pos[i]}) pointed off a batch boundary or at a batch without that offset")
            return None
        return h

    def _index_fault(self, reason: str) -> None:
        """An index entry does not match the batch it names: both indexes are rebuilt from the batch
        headers, in memory (dirty: the next flush or close writes them), and that is said through
        on_event. Any entry may be wrong when one is, so all of them go; once rebuilt they match."""
        self.rebuild_indexes()
        if self.on_event is not None:
            self.on_event("index-rebuilt", {"segment": str(self.log_path), "reason": reason})

    def rebuild_indexes(self) -> None:
        """Both indexes (and the max timestamp) again from the batch headers, as scan does without
        the CRCs; the offsets and the file are left alone."""
        self.reset_indexes()
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        for pos, h in self.walk_headers(0):
            self._maybe_index(pos, h, h.size)

    def lookup(self, offset: int) -> int:
        """Position of a batch at or before the one containing `offset` (sparse index floor, checked)."""
        return self._floor(offset)[0]

    def lookup_time(self, ts: int) -> int:
        """Position from which to scan for the first batch with maxTimestamp >= ts: past the batch
        of the time index's largest entry below ts (that entry names the last offset of the batch
        holding the largest timestamp so far, so every batch up to it is below ts). That batch's
        max timestamp is checked against the entry's; a mismatch rebuilds the indexes."""
        i = bisect_right(self.tidx_ts, ts - 1) - 1  # largest entry with timestamp < ts
        if i < 0:
            return 0
        found = self.find(self.base_offset + self.tidx_rel[i])
        if found is None or found[1].max_timestamp != self.tidx_ts[i]:
            self._index_fault(f"a time index entry (timestamp {self.tidx_ts[i]}, offset "
                              f"{self.base_offset + self.tidx_rel[i]}) disagreed with the batch it names")
            return 0   # a walk from the start is right whatever the indexes say
        return found[0] + found[1].size

    def write_indexes(self, *, sync: bool = True) -> None:
        """Persist both indexes (with a final time-index entry for the max timestamp).
        sync=False: written but not fsynced, and still dirty, so the next flush, roll or close
        writes them durably. Enough for the active segment at open: recovery rescans the active
        segment anyway, and load_indexes() rejects index files that do not fit their log."""
        if not self.index_dirty and (self.size == 0 or (self.index_path.exists() and self.timeindex_path.exists())):
            return  # unchanged (an empty segment's indexes are empty: no files needed)
        self._maybe_time_entry()
        idx = bytearray(8 * len(self.idx_rel))
        for i in range(len(self.idx_rel)):
            _IDX.pack_into(idx, 8 * i, self.idx_rel[i], self.idx_pos[i])
        tidx = bytearray(12 * len(self.tidx_ts))
        for i in range(len(self.tidx_ts)):
            _TIDX.pack_into(tidx, 12 * i, self.tidx_ts[i], self.tidx_rel[i])
        atomic_write(self.index_path, bytes(idx), sync=sync)
        atomic_write(self.timeindex_path, bytes(tidx), sync=sync)
        self.index_dirty = not sync

    def index_state(self) -> tuple:
        """The in-memory indexes as they would be written (to tell whether a rebuild changed them)."""
        self._maybe_time_entry()
        return self.idx_rel, self.idx_pos, self.tidx_ts, self.tidx_rel

    def load_indexes(self) -> bool:
        """Load index files; False if missing or inconsistent with the log (caller rebuilds)."""
        try:
            with open(self.index_path, "rb") as f:
                idx = f.read()
            with open(self.timeindex_path, "rb") as f:
                tidx = f.read()
        except FileNotFoundError:
            return False
        if len(idx) % 8 or len(tidx) % 12:
            return False
        rel, pos = array("I"), array("I")
        for r, p in _IDX.iter_unpack(idx):
            if (rel and (r <= rel[-1] or p <= pos[-1])) or p >= self.size:
                return False
            rel.append(r)
            pos.append(p)
        ts_a, trel = array("q"), array("I")
        for t, r in _TIDX.iter_unpack(tidx):
            if ts_a and (t <= ts_a[-1] or r < trel[-1]):
                return False
            ts_a.append(t)
            trel.append(r)
        self.idx_rel, self.idx_pos, self.tidx_ts, self.tidx_rel = rel, pos, ts_a, trel
        if ts_a:
            self.max_timestamp = ts_a[-1]
            self.offset_of_max_timestamp = self.base_offset + trel[-1]
        self.index_dirty = False
        return True

    # ---------------------------------------------------------------- file access

    def append(self, data, batches: list[tuple[int, BatchHeader]]) -> None:
        """Write data (whole batches, offsets assigned) at the end with one write call.
        batches holds (position within data, header) for indexing."""
        start = self.size
        try:
            self._write_at(start, memoryview(data))
        except OSError:
            self._cut_back(start)
            raise
        for p, h in batches:
            self._maybe_index(start + p, h, h.size)
        self.size = start + len(data)
        self.next_offset = batches[-1][1].next_offset

    def _cut_back(self, size: int) -> None:
        """After a write that failed part way (a full disk takes what fits, then refuses the rest):
        cut what it left past `size`, which a roll would otherwise leave between this segment's
        last batch and its end (the next start refuses a segment below the recovery point whose
        batches end short of its file). Cutting frees space, so it works on a full disk; if it
        fails anyway, the next append at `size` writes over those bytes, and a roll cuts them."""
        try:
            self._f.truncate(size)
        except OSError:
            self.tail_past_size = True

    def cut_tail(self) -> None:
        """Cut bytes a failed write left past the end (see _cut_back), before the segment rolls."""
        if self.tail_past_size:
            self._f.truncate(self.size)
            self.tail_past_size = False

    def _write_at(self, pos: int, view: memoryview) -> None:
        fd = self._f.fileno()
        done = 0
        while done < len(view):
            if _POSITIONED:
                done += os.pwrite(fd, view[done:], pos + done)
            else:
                self._f.seek(pos + done)
                done += self._f.write(view[done:])

    def read_at(self, pos: int, n: int) -> bytes:
        """Up to n bytes at pos (fewer only at the end of the file)."""
        if _POSITIONED:
            data = os.pread(self._f.fileno(), n, pos)
            if len(data) == n or not data:
                return data
            parts = [data]
            got = len(data)
            while got < n:
                more = os.pread(self._f.fileno(), n - got, pos + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            return b"".join(parts)
        self._f.seek(pos)
        return self._f.read(n)   # unbuffered: seek always moves the descriptor itself

    def read_exact(self, pos: int, n: int) -> bytes:
        data = self.read_at(pos, n)
        if len(data) != n:
            raise OSError(f"short read of {self.log_path.name}: {len(data)} of {n} bytes at {pos}")
        return data

    def _read_copy(self, pos: int, view) -> int:
        data = os.pread(self._f.fileno(), len(view), pos)
        view[:len(data)] = data
        return len(data)

    def dup_fd(self) -> int:
        """A duplicate of the log file's descriptor (the caller closes it)."""
        return os.dup(self._f.fileno())

    def read_into(self, pos: int, view) -> None:
        """Fill view with the bytes at pos (one read for a regular file); OSError if short."""
        fd = self._f.fileno()
        got = 0
        while got < len(view):
            if _POSITIONED:
                more = os.preadv(fd, [view[got:]], pos + got) if _PREADV else self._read_copy(pos + got, view[got:])
            else:
                self._f.seek(pos + got)
                more = self._f.readinto(view[got:])
            if not more:
                raise OSError(f"short read of {self.log_path.name}: {got} of {len(view)} bytes at {pos}")
            got += more

    def extent(self, pos: int, room: int, max_offset: int | None = None) -> int:
        """End position of the whole batches from pos (a batch start) that fit in room bytes and
        have base offsets below max_offset. Uses the sparse index to skip most headers."""
        limit = min(self.size, pos + room)
        if limit == self.size and (max_offset is None or self.next_offset <= max_offset):
            return limit
        j = bisect_right(self.idx_pos, limit) - 1
        if max_offset is not None:
            # entries whose batch (and so every batch before it) ends below max_offset
            j = min(j, bisect_left(self.idx_rel, max_offset - self.base_offset) - 1)
        end = pos
        h = None
        if j >= 0 and self.idx_pos[j] > pos:
            # the entry's header is read (and checked, as _floor does) even with less than a header
            # of room left: the jump itself trusts it to be a batch boundary
            h = self._entry_header(j)
            if h is not None:   # else walked from pos: right whatever the indexes say
                end = self.idx_pos[j]
        while True:
            if h is None:
                if limit - end < HEADER_SIZE:
                    break
                h = self.header_at(end)
                if h is None:
                    break
            if end + h.size > limit or (max_offset is not None and h.base_offset >= max_offset):
                break
            end += h.size
            h = None
        return end

    def header_at(self, pos: int) -> BatchHeader | None:
        """Header of the batch at pos, or None if no complete well-framed batch starts there."""
        if self.size - pos < HEADER_SIZE:
            return None
        h = parse_header(self.read_at(pos, HEADER_SIZE))
        if h.magic != 2 or h.batch_length < MIN_BATCH_LENGTH or pos + h.size > self.size:
            return None
        return h

    def walk_headers(self, pos: int = 0):
        """Yield (pos, header) batch by batch reading headers only; stops at EOF or bad framing.
        After exhaustion, self.walk_end holds the position where the walk stopped."""
        self.walk_end = pos
        while pos < self.size:
            h = self.header_at(pos)
            if h is None:
                break
            yield pos, h
            pos += h.size
            self.walk_end = pos

    def find(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(pos, header) of the first batch whose last offset >= offset, or None. The header the
        index points at is read once: checked (_floor), then the answer when it holds offset."""
        pos, h = self._floor(offset)
        if h is not None:
            if h.next_offset > offset:
                return pos, h
            pos += h.size
        for pos, h in self.walk_headers(pos):
            if h.next_offset > offset:
                return pos, h
        return None

    def scan(self, verify_crc: bool = True) -> int:
        """Rebuild indexes, next offset and max timestamp by walking every batch (checking CRC32C
        if asked). Returns the number of valid bytes; anything after it is torn or corrupt."""
        self.reset_indexes()
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        valid = 0
        expect = self.base_offset
        buf = b""
        buf_start = 0
        while True:
            if verify_crc:
                need_more = len(buf) - (valid - buf_start) < HEADER_SIZE
                if not need_more:
                    h = parse_header(buf, valid - buf_start)
                    need_more = h.batch_length >= MIN_BATCH_LENGTH and len(buf) - (valid - buf_start) < h.size
                if need_more:
                    buf = buf[valid - buf_start:]
                    buf_start = valid
                    more = self.read_at(buf_start + len(buf), max(SCAN_CHUNK, len(buf)))
                    if not more:
                        break
                    buf += more
                    continue
                rel = valid - buf_start
                if (h.magic != 2 or h.batch_length < MIN_BATCH_LENGTH or h.base_offset < expect
                        or h.last_offset_delta < 0 or h.last_offset - self.base_offset > 0xFFFFFFFF):
                    break
                if crc32c.crc32c(memoryview(buf)[rel + CRC_START:rel + h.size]) != h.crc:
                    break
            else:
                h = self.header_at(valid)
                if h is None or h.base_offset < expect:
                    break
            self._maybe_index(valid, h, h.size)
            valid += h.size
            expect = h.next_offset
            self.next_offset = expect
        if self.roll_base_ms is None and valid:
            self.roll_base_ms = self.header_at(0).max_timestamp
        return valid

    def truncate(self, pos: int) -> None:
        """Cut the file at byte pos and rebuild the indexes from the remaining headers."""
        self._f.truncate(pos)
        self.cuts += 1
        self.size = pos
        self.scan(verify_crc=False)
        if pos == 0:
            self.roll_base_ms = None   # segment.ms counts from its next first append, as Kafka's

    def fsync(self) -> None:
        os.fsync(self._f.fileno())

    def mark(self) -> tuple[int, int]:
        """Which bytes the segment holds now: equal marks, the same bytes (appends move
        next_offset; a cut, even one appended back to the same offset, moves cuts)."""
        return self.next_offset, self.cuts

    def dup_handle(self) -> int:
        """A duplicate of the segment's file handle, for an fsync in another thread: it stays
        valid (and the file's data reachable) if the segment is closed or deleted meanwhile.
        The caller closes it."""
        return os.dup(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    @property
    def closed(self) -> bool:
        return self._f.closed

    def delete_files(self) -> None:
        """Close the handle, then delete the log and index files (rename-then-delete). The log
        file goes first and decides: while another program holds it (Windows: a virus scanner,
        the indexer) it cannot be renamed, and then the segment is opened again as it was and the
        PermissionError raised, so the caller's log stays whole and can try again later. An index
        file held likewise is left behind: without its log it is removed at the next open."""
        self.close()
        try:
            safe_delete(self.log_path)
        except PermissionError:
            self._f = open(os.open(self.log_path, os.O_RDWR | getattr(os, "O_BINARY", 0)), "r+b", buffering=0)
            raise
        for p in (self.index_path, self.timeindex_path):
            safe_delete_later(p)   # rewritten whole before use; without its log, removed at the next open
        remove_or_empty(self.txnindex_path)   # appended to: a later segment at this base must not find its entries
