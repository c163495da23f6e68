"""Opening a partition directory: find segments, sanity-check the ones below the recovery point,
CRC-scan the rest and truncate a torn or corrupt tail, rebuild missing/inconsistent indexes.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from .errors import UnrecoverableJournalError
from .cleaner import CLEANED_SUFFIX, SWAP_SUFFIX, complete_swaps
from .files import clean_leftovers, safe_delete_later
from .segment import Segment

_LOG_RE = re.compile(r"^(\d{20})\.log$")
_IDX_RE = re.compile(r"^(\d{20})\.(index|timeindex|txnindex)$")

Emit = Callable[[str, dict], None]


def list_segment_bases(directory: Path, listing: list[str] | None = None) -> list[int]:
    """Base offsets of every `%020d.log` in directory; removes orphan index files and leftovers.
    `listing`: the directory's names, when the caller has listed it already."""
    listing = os.listdir(directory) if listing is None else listing
    if any(n.endswith((SWAP_SUFFIX, CLEANED_SUFFIX)) for n in listing) and complete_swaps(directory, listing):
        listing = os.listdir(directory)   # a compaction swap a crash interrupted, finished now
    clean_leftovers(directory, listing)
    names = set(listing)
    bases, orphans = [], []
    for name in names:
        m = _LOG_RE.match(name)
        if m:
            bases.append(int(m.group(1)))
            continue
        m = _IDX_RE.match(name)
        if m and f"{m.group(1)}.log" not in names:
            orphans.append(directory / name)
    for p in orphans:
        safe_delete_later(p)   # one another program holds (Windows): removed at a later open
    return sorted(bases)


def _check_below_recovery_point(seg: Segment, next_base: int | None, emit: Emit) -> None:
    """Cheap check of a segment holding only acknowledged data; raises UnrecoverableJournalError."""
    def fail(why: str) -> None:
        raise UnrecoverableJournalError(
            f"segment {seg.log_path} holds acknowledged data but {why}; refusing to truncate it. "
            f"Restore the file from a backup or remove the partition directory to start it empty.")

    first = seg.header_at(0)
    if first is None:
        fail("its first batch header is unreadable (bad magic, bad length or file too short)")
    if first.base_offset < seg.base_offset:   # compaction may leave a gap at the start, never less
        fail(f"its first batch has offset {first.base_offset}, below {seg.base_offset} that its name says")
    loaded = seg.load_indexes()
    start = seg.idx_pos[-1] if loaded and len(seg.idx_pos) else 0
    tail = None   # the batch the last offset-index entry names: the walk below starts there
    if loaded and start:
        tail = seg.header_at(start)
        if tail is None or tail.last_offset != seg.base_offset + seg.idx_rel[-1]:
            loaded = False
            start = 0
    # the last time-index entry is the segment's max timestamp (ListOffsets -3, time retention):
    # the batch it names must have that max timestamp. A damaged one (a far-future timestamp) was
    # answered to ListOffsets and held time retention at this segment for good. Checked in the
    # walk below when that batch is in it, else with one find (a header read or a few).
    ts_check = (seg.tidx_ts[-1], seg.base_offset + seg.tidx_rel[-1]) if loaded and seg.tidx_ts else None
    if ts_check is not None and start:
        if ts_check[1] < tail.base_offset:
            found = seg.find(ts_check[1])
            if found is None or not _names(found[1], *ts_check):
                loaded = False
                start = 0
            ts_check = None
    if not loaded:
        seg.reset_indexes()
        seg.max_timestamp = -1
        start = 0
    last, ts_bad = None, False
    for _pos, h in seg.walk_headers(start):
        if not loaded:
            seg._maybe_index(_pos, h, h.size)
        else:
            if h.max_timestamp > seg.max_timestamp:
                seg.max_timestamp, seg.offset_of_max_timestamp = h.max_timestamp, h.last_offset
            if ts_check is not None and h.base_offset <= ts_check[1] <= h.last_offset:
                ts_bad = not _names(h, *ts_check)
                ts_check = None
        last = h
    if seg.walk_end != seg.size:
        fail(f"its batches end at byte {seg.walk_end} while the file has {seg.size} bytes")
    if loaded and (ts_check is not None or ts_bad):
        # no batch held its offset, or the one holding it has another max timestamp: rebuilt
        seg.rebuild_indexes()
        loaded = False
    seg.next_offset = last.next_offset if last else seg.base_offset
    if next_base is not None and seg.next_offset > next_base:
        fail(f"it ends at offset {seg.next_offset}, past the next segment's base {next_base}")
    seg.roll_base_ms = first.max_timestamp
    if not loaded:
        seg.write_indexes()
        emit("index-rebuilt", {"segment": str(seg.log_path), "reason": "missing or inconsistent index files"})


def _names(h, ts: int, offset: int) -> bool:
    """Whether batch h is the one a time-index entry (ts, offset) names: it holds offset and its
    max timestamp is ts (entries name the batch holding the largest timestamp so far)."""
    return h.base_offset <= offset <= h.last_offset and h.max_timestamp == ts


def open_segments(directory: Path, index_interval_bytes: int, recovery_point: int, emit: Emit,
                  listing: list[str] | None = None) -> list[Segment]:
    """Open and recover every segment in directory (see module doc). Returns them oldest first."""
    bases = list_segment_bases(directory, listing)
    segments: list[Segment] = []
    try:
        for i, base in enumerate(bases):
            seg = Segment(directory, base, index_interval_bytes)
            seg.on_event = emit   # an index entry found wrong at a read (Segment._floor) is said too
            segments.append(seg)
            next_base = bases[i + 1] if i + 1 < len(bases) else None
            is_last = next_base is None
            if not is_last and next_base <= recovery_point:
                _check_below_recovery_point(seg, next_base, emit)
                continue
            had_index = seg.load_indexes()
            on_disk = (seg.idx_rel, seg.idx_pos, seg.tidx_ts, seg.tidx_rel) if had_index else None
            valid = seg.scan(verify_crc=True)
            if valid < seg.size:
                removed = seg.size - valid
                first_removed = seg.next_offset
                removed_segments = []
                for later in bases[i + 1:]:
                    s = Segment(directory, later, index_interval_bytes)
                    removed += s.size
                    removed_segments.append(str(s.log_path))
                    s.delete_files()
                seg.truncate(valid)
                seg.write_indexes(sync=False)   # now the last segment: see below
                detail = {"segment": str(seg.log_path), "bytes": removed, "offset": first_removed,
                          "removed_segments": removed_segments}
                if first_removed < recovery_point:
                    # the cut begins below what was flushed to disk: not a write a crash tore but
                    # damage at rest to records that were acknowledged (Kafka cuts here too, without
                    # saying so); said apart, with the offsets, so nobody takes it for a torn tail
                    detail["flushed_to"] = recovery_point
                emit("repair", detail)
                break
            if not had_index and seg.size == 0:
                seg.index_dirty = False  # an empty segment has empty indexes: nothing to rebuild (10,000 idle partitions
                # would otherwise cost 20,000 fsynced writes per start); written once data arrives
            elif not had_index:
                # above the recovery point (typically an active segment a crash caught before its
                # first flush): not fsynced here, which costs 4 fsyncs per partition on the first
                # use after a crash; it stays dirty, so the next flush/roll/close writes it durably,
                # and until then a crash rescans this segment anyway
                seg.write_indexes(sync=False)
                emit("index-rebuilt", {"segment": str(seg.log_path), "reason": "missing or inconsistent index files"})
            else:
                # rebuilt in memory by the scan: persist at the next flush, unless the files already
                # say the same (a clean stop wrote them): then a stop need not rewrite them
                seg.index_dirty = seg.size > 0 and seg.index_state() != on_disk
    except BaseException:
        for s in segments:
            s.close()
        raise
    return segments
