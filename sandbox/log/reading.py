"""Reading a partition log: locating the batch of an offset, collecting whole batches up to a byte
limit (nothing is read: LogSlices are read later, or pinned for sendfile), and timestamp lookups. A
base of PartitionLog: these methods work on its segments and offsets."""

from __future__ import annotations

from bisect import bisect_right

from .batch import BatchHeader
from .errors import OffsetOutOfRangeError
from .segment import Segment
from .slices import LogSlices

MAX_TIMESTAMP = -3   # offset_for_timestamp: the largest timestamp (ListOffsets' -3)


class Reading:

    def _check_offset(self, offset: int) -> None:
        if offset < self._log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside [{self._log_start_offset}, {self.log_end_offset}] "
                f"of {self.directory.name}")

    def _locate(self, offset: int) -> tuple[int, int, BatchHeader] | None:
        """(segment index, position, header) of the batch containing offset (or the next one)."""
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while i < len(self._segments):
            found = self._segments[i].find(offset)
            if found is not None:
                return i, found[0], found[1]
            i += 1
        return None

    def _collect(self, offset: int, max_bytes: int, max_offset: int | None,
                 min_one: bool = True) -> list[tuple[Segment, int, int]]:
        """(segment, position, length) runs of whole batches from the one containing offset: at
        least that batch (unless min_one is False: then nothing if it is larger than max_bytes),
        then up to max_bytes in all, none with base offset >= max_offset. Only batch headers are
        read (and few: the sparse index jumps close to the byte limit)."""
        self._check_offset(offset)
        out: list[tuple[Segment, int, int]] = []
        if offset == self.log_end_offset:
            return out
        loc = self._locate(offset)
        if loc is None:
            return out
        i, pos, first = loc
        if max_offset is not None and first.base_offset >= max_offset:
            return out
        room = max(max_bytes, first.size) if min_one else max_bytes
        total = 0
        while i < len(self._segments):
            seg = self._segments[i]
            end = seg.extent(pos, room - total, max_offset)
            n = end - pos
            if n:
                out.append((seg, pos, n))
                total += n
            if end < seg.size or total >= max_bytes or not n:
                break
            i, pos = i + 1, 0
            room = max_bytes
        return out

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None,
             min_one: bool = True) -> LogSlices:
        """Whole batches from the one containing offset, up to max_bytes (at least one batch,
        however large, unless min_one is False), none with base offset >= max_offset; empty at
        the log end. Nothing is read yet: the LogSlices is read (tobytes, readinto, or pinned for
        sendfile) before the log next changes."""
        return LogSlices(self._collect(offset, max_bytes, max_offset, min_one))

    def offset_for_timestamp(self, ts_ms: int) -> tuple[int, int] | None:
        """(base offset, max timestamp) of the first batch whose maxTimestamp >= ts_ms, or None.
        MAX_TIMESTAMP (-3, as ListOffsets): the batch holding the largest timestamp."""
        if ts_ms == MAX_TIMESTAMP:
            return self._max_timestamp()
        for seg in self._segments:
            if seg.max_timestamp < ts_ms:
                continue
            for _pos, h in seg.walk_headers(seg.lookup_time(ts_ms)):
                if h.max_timestamp >= ts_ms and h.next_offset > self._log_start_offset:
                    return max(h.base_offset, self._log_start_offset), h.max_timestamp
        return None

    def _max_timestamp(self) -> tuple[int, int] | None:
        best = None
        for seg in self._segments:
            if seg.max_timestamp >= 0 and (best is None or seg.max_timestamp > best.max_timestamp):
                best = seg
        if best is None:
            return None
        found = best.find(best.offset_of_max_timestamp)
        base = found[1].base_offset if found else best.offset_of_max_timestamp
        return max(base, self._log_start_offset), best.max_timestamp
