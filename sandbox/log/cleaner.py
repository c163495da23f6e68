"""Log compaction (cleanup.policy=compact): keep the latest record of every key.

Like Kafka's log cleaner, it works on the closed segments only (never the active one): it finds
each key's latest offset over them, then rewrites each segment without the records a later one
of the same key replaced. Tombstones (null values) go too once delete.retention.ms has passed
since their batch; records without a key are kept; kept records keep their offsets and
timestamps, so consumers see gaps, as with Kafka. Segments newer than min.compaction.lag.ms are
left alone.

Two halves, so the slow one can run off the broker's event loop:
- clean(refs, ...) reads the segments through handles of its own and writes `<base>.log.cleaned`
  files next to them; it changes nothing the log uses.
- PartitionLog.install_cleaned(result) (on the log's owner) checks the segments are unchanged,
  then swaps: `.cleaned` -> `.swap` (fsynced), the old indexes deleted, `.swap` replaces `.log`,
  indexes rebuilt. A crash after the `.swap` rename is completed at the next open
  (complete_swaps); a `.cleaned` file is a leftover and is deleted. Every rename and delete goes
  through the retrying, close-first helpers in files.py (Windows cannot replace an open file).

Compressed batches are expanded through the `decompress(codec, bytes)` the caller hands in (this
package stays free of codec libraries) and written back uncompressed; without one they are kept
whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .batch import (ATTR_CODEC_MASK, HEADER_SIZE, BatchHeader, StoredRecord, parse_header,
                    read_stored_records, rebuild_batch)
from .config import LogConfig
from .files import fsync_dir, retry, safe_delete

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
_COPY_CHUNK = 1 << 20

Decompress = Callable[[int, bytes], bytes]


@dataclass(frozen=True)
class SegmentRef:
    """A closed segment as the cleaner saw it (installing checks it is still the same)."""
    base: int
    path: Path
    size: int
    max_timestamp: int
    next_offset: int


@dataclass
class CleanResult:
    refs: list[SegmentRef]
    outputs: dict[int, Path | None] = field(default_factory=dict)   # base -> .cleaned file; None: delete it
    records_before: int = 0
    records_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    tombstones_due_ms: int | None = None   # when a kept tombstone may go: clean again then

    def discard(self) -> None:
        for p in self.outputs.values():
            if p is not None:
                safe_delete(p)
        self.outputs.clear()


def _batches(path: Path, size: int) -> Iterator[tuple[BatchHeader, bytes]]:
    with open(path, "rb") as f:
        pos = 0
        while pos + HEADER_SIZE <= size:
            head = f.read(HEADER_SIZE)
            h = parse_header(head)
            rest = f.read(h.size - HEADER_SIZE)
            if len(rest) != h.size - HEADER_SIZE:
                raise OSError(f"{path.name} ends inside the batch at byte {pos}")
            yield h, head + rest
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


def clean(refs: list[SegmentRef], config: LogConfig, now_ms: int,
          decompress: Decompress | None = None) -> CleanResult | None:
    """Write the compacted copies of `refs` (oldest first, all closed); None if nothing would
    change. The caller installs the result (PartitionLog.install_cleaned) or discards it."""
    if not refs:
        return None
    # the active segment is never among refs, so at least one segment always remains
    latest: dict[bytes, int] = {}
    for ref in refs:
        for h, raw in _batches(ref.path, ref.size):
            if h.is_control:
                continue
            recs = _records(h, raw, decompress)
            for r in recs or ():
                if r.key is not None:
                    latest[r.key] = h.base_offset + r.offset_delta
    result = CleanResult(refs)
    tombstone_horizon = now_ms - config.delete_retention_ms
    for i, ref in enumerate(refs):
        out_path = ref.path.with_name(ref.path.name + CLEANED_SUFFIX)
        out = None        # opened at the first change: an unchanged segment is never copied
        written = pos = 0
        try:
            for h, raw in _batches(ref.path, ref.size):
                result.bytes_before += h.size
                recs = None if h.is_control else _records(h, raw, decompress)
                if recs is None:   # control batches, or records this cleaner cannot read
                    data = raw
                    result.records_before += h.records_count
                    result.records_after += h.records_count
                else:
                    kept = []
                    for r in recs:
                        if r.key is not None and latest.get(r.key) != h.base_offset + r.offset_delta:
                            continue   # a later record of this key replaces it
                        if r.key is not None and r.value is None:
                            if h.max_timestamp < tombstone_horizon:
                                continue   # a tombstone past delete.retention.ms
                            due = h.max_timestamp + config.delete_retention_ms
                            if result.tombstones_due_ms is None or due < result.tombstones_due_ms:
                                result.tombstones_due_ms = due
                        kept.append(r)
                    result.records_before += len(recs)
                    result.records_after += len(kept)
                    if len(kept) == len(recs) and not h.attributes & ATTR_CODEC_MASK:
                        data = raw
                    else:
                        data = rebuild_batch(h, kept) if kept else b""
                        if out is None:
                            out = open(out_path, "wb")
                            written = _copy_prefix(ref.path, pos, out)
                if out is not None and data:
                    out.write(data)
                    written += len(data)
                pos += h.size
            if out is not None:
                out.flush()
                os.fsync(out.fileno())
        finally:
            if out is not None:
                out.close()
        if out is None:
            result.bytes_after += ref.size
            continue
        if written == 0:   # nothing of it is left: the segment goes (the log start offset stays)
            safe_delete(out_path)
            result.outputs[ref.base] = None
        else:
            result.outputs[ref.base] = out_path
            result.bytes_after += written
    if not result.outputs and result.tombstones_due_ms is None:
        return None
    return result


def _copy_prefix(src: Path, n: int, out) -> int:
    """Copy the first n bytes of src (batches kept unchanged before the first change) to out."""
    left = n
    with open(src, "rb") as f:
        while left:
            chunk = f.read(min(_COPY_CHUNK, left))
            if not chunk:
                raise OSError(f"{src.name} is shorter than {n} bytes")
            out.write(chunk)
            left -= len(chunk)
    return n


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
    retry(lambda: os.replace(swap, log_path))
