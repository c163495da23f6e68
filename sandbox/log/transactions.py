"""Transactions in one partition log: the aborted-transaction index (one `.txnindex` file per
segment in Kafka's AbortedTxn format, the entry kept in the segment its abort marker landed in),
read by read_committed fetches, rebuilt from the log past the last snapshot at recovery."""
from __future__ import annotations

import errno
import os
import struct
from bisect import bisect_left
from pathlib import Path
from typing import NamedTuple

from .files import (MARKS, STALE_SUFFIX, atomic_write, fsync_file, is_stale, offset_files, remove_or_empty,
                    safe_delete, stale_mark)
from .segment import segment_name

# version, producer id, first offset, last offset (the marker's), last stable offset: 34 bytes
_ENTRY = struct.Struct(">hqqqq")
SUFFIX = ".txnindex"


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int          # the abort marker's offset
    last_stable_offset: int   # the partition's LSO once the marker was written


class TxnIndex:
    """Every aborted transaction of a partition, ordered by marker offset, in memory and in the
    `.txnindex` files of the segments holding the markers. Appends are written at once and
    fsynced at the log's flush (sync()); what lies past the recovery point is rebuilt from the log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: list[AbortedTxn] = []
        self._lasts: list[int] = []              # last_offset of each entry (bisect)
        self._file_of: dict[int, int] = {}       # marker offset -> segment base holding it
        self._unsynced: set[Path] = set()
        self._unwritten: dict[Path, int] = {}    # file whose append failed -> its segment base
        self.marks_seen = False   # a stale mark was in the folder at load (see ensure_writable)

    def path(self, base: int) -> Path:
        return self.directory / f"{segment_name(base)}{SUFFIX}"

    def files(self, listing: list[str] | None = None) -> list[tuple[int, Path]]:
        return offset_files(self.directory, SUFFIX, listing)

    # ---------------------------------------------------------------- recovery

    def load(self, bases: list[int], keep_below: int, listing: list[str] | None = None) -> bool:
        """Read the index files of the segments `bases`, keeping entries whose marker is below
        keep_below (the log after it is rescanned, which adds the rest back). Files of segments
        that are gone are deleted. False when a file is damaged (the caller rebuilds from the log)."""
        self.clear_memory()
        names = os.listdir(self.directory) if listing is None else listing
        self.marks_seen = any(n.endswith(STALE_SUFFIX) for n in names)
        present = set(bases)
        ordered = sorted(present)
        whole = True
        for base, path in self.files(names):
            if base not in present:
                safe_delete(path)
                continue
            i = bisect_left(ordered, base) + 1
            next_base = ordered[i] if i < len(ordered) else None
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                return False
            kept = []
            # whole entries, up to where zeros run to the end: appends an OS crash lost (the file
            # is fsynced before any snapshot past them is written, so the replay from the snapshot
            # adds them back); cut off as a torn tail is, not taken for damage
            written = len(data.rstrip(b"\0"))
            usable = min(len(data) - len(data) % _ENTRY.size, -(-written // _ENTRY.size) * _ENTRY.size)
            for pos in range(0, usable, _ENTRY.size):
                version, pid, first, last, lso = _ENTRY.unpack_from(data, pos)
                # an entry's marker lies in its own segment, after the transaction's first batch
                # (Kafka's sanityCheck; zeros within the file are no entry either)
                if (version != 0 or pid < 0 or not 0 <= first < last or last < base
                        or (next_base is not None and last >= next_base)):
                    whole = False
                    break
                if last < keep_below:
                    kept.append(AbortedTxn(pid, first, last, lso))
            if not whole:
                return False
            if len(kept) * _ENTRY.size != len(data):
                self._rewrite(path, kept)
            for e in kept:
                self._remember(e, base)
        self._sort()
        return True

    def reset(self) -> None:
        """No entry, no file (the log is rebuilt from scratch or emptied)."""
        for _base, path in self.files():
            remove_or_empty(path)   # a held one emptied: what is rebuilt is appended to it
        self.clear_memory()

    def clear_memory(self) -> None:
        self.entries, self._lasts, self._file_of = [], [], {}
        self._unsynced.clear()
        self._unwritten.clear()

    def truncate(self, end: int) -> None:
        """Forget entries whose marker is at or past `end` (the log was cut there)."""
        gone = [e for e in self.entries if e.last_offset >= end]
        if not gone:
            return
        bases = {self._file_of.pop(e.last_offset) for e in gone}
        self.entries = [e for e in self.entries if e.last_offset < end]
        self._lasts = [e.last_offset for e in self.entries]
        for base in bases:
            self._rewrite(self.path(base), [e for e in self.entries if self._file_of.get(e.last_offset) == base])

    def drop_below(self, start: int, bases: list[int]) -> None:
        """Segments were deleted from the front: forget entries whose marker went with them."""
        present = set(bases)
        if all(b in present for b in self._file_of.values()):
            return
        self.entries = [e for e in self.entries if self._file_of.get(e.last_offset) in present]
        self._lasts = [e.last_offset for e in self.entries]
        self._file_of = {o: b for o, b in self._file_of.items() if b in present}
        self._unwritten = {p: b for p, b in self._unwritten.items() if b in present}

    # ---------------------------------------------------------------- writes and reads

    @property
    def marks_possible(self) -> bool:
        """Whether a stale mark can be in this folder (this process wrote one, or one was there at
        load): otherwise nothing looks for one."""
        return MARKS["made"] or self.marks_seen

    def ensure_writable(self, segment_base: int) -> None:
        """Before a transaction marker is written into the segment at segment_base: its index
        file must not still say what a cut removed (a holder that refused its removal and writes
        too, remove_or_empty). It is emptied now if it can be; otherwise PermissionError, and the
        marker is not written (the append fails whole; the coordinator sends it again), rather
        than written with its entry lost or put behind stale ones."""
        if not self.marks_possible:
            return
        path = self.path(segment_base)
        if stale_mark(path).exists() and is_stale(path) and not remove_or_empty(path) and is_stale(path):
            raise PermissionError(errno.EACCES, "an aborted-transaction index of cut batches is still "
                                                "held by another program", str(path))

    def add(self, entry: AbortedTxn, segment_base: int) -> None:
        """An abort marker was appended (entries arrive in offset order). The marker is in the
        log and its transaction no longer open by now, so the entry is kept in memory whatever
        the disk does: read_committed fetches are answered from memory. A file that cannot take
        it (a full disk, a held file) is written whole again by sync(), which fails until it
        can be, and no snapshot is written past the marker before then (a restart replays the
        marker from the snapshot before it, which adds the entry back)."""
        self._remember(entry, segment_base)
        path = self.path(segment_base)
        self._unsynced.add(path)
        if path in self._unwritten:
            return   # its earlier entry is missing from the file: rewritten whole by sync()
        try:
            with open(path, "ab") as f:
                f.write(_ENTRY.pack(0, *entry))
        except OSError:
            self._unwritten[path] = segment_base

    def sync(self) -> None:
        """Every entry on disk and fsynced; OSError while a file cannot be written or fsynced."""
        for path, base in list(self._unwritten.items()):
            self._rewrite(path, [e for e in self.entries if self._file_of.get(e.last_offset) == base])
        for path in list(self._unsynced):
            fsync_file(path)
            self._unsynced.discard(path)

    def overlapping(self, start: int, upper: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions with data in [start, upper):
        the aborted_transactions of a read_committed fetch."""
        out = []
        for e in self.entries[bisect_left(self._lasts, start):]:
            if e.first_offset < upper:
                out.append((e.producer_id, e.first_offset))
        return out

    def _remember(self, entry: AbortedTxn, base: int) -> None:
        self.entries.append(entry)
        self._lasts.append(entry.last_offset)
        self._file_of[entry.last_offset] = base

    def _sort(self) -> None:
        self.entries.sort(key=lambda e: e.last_offset)
        self._lasts = [e.last_offset for e in self.entries]

    def _rewrite(self, path: Path, entries: list[AbortedTxn]) -> None:
        if entries:
            atomic_write(path, b"".join(_ENTRY.pack(0, *e) for e in entries))   # a stale mark left names another file
        else:
            safe_delete(path)
        self._unsynced.discard(path)
        self._unwritten.pop(path, None)

