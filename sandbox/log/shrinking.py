"""What removes data from a partition log: truncation (room for replication's follower
truncation), DeleteRecords, retention, and the compaction hand-off with the cleaner. A base of
PartitionLog: these methods work on its segments, offsets and producer state."""

from __future__ import annotations

from .cleaner import CleanResult, SegmentRef, check_cleaned, swap_in
from .errors import OffsetOutOfRangeError
from .files import clean_leftovers, fsync_dir, safe_delete
from .producers import ProducerState
from .segment import Segment


class Shrinking:
    # ---------------------------------------------------------------- truncation, deletion, retention

    def truncate_to(self, offset: int) -> None:
        """Drop every batch containing an offset >= offset (a batch straddling offset goes too, so
        the new LEO is that batch's base offset). Room for replication's follower truncation."""
        if offset >= self.log_end_offset:
            return
        loc = self._locate(offset)
        i, pos = (loc[0], loc[1]) if loc else (len(self._segments) - 1, self._active.size)
        for seg in self._segments[i + 1:]:
            seg.delete_files()
        del self._segments[i + 1:]
        seg = self._segments[i]
        if pos == 0 and i > 0:
            seg.delete_files()
            self._segments.pop()
        else:
            seg.truncate(pos)
            seg.write_indexes()
        self._bases = [s.base_offset for s in self._segments]
        leo = self.log_end_offset
        self._epochs.truncate_from_end(leo)
        self._high_watermark = min(self._high_watermark, leo)
        self._recovery_point = min(self._recovery_point, leo)
        self._log_start_offset = min(self._log_start_offset, leo)
        for off, p in self._snapshots():
            if off > leo:
                safe_delete(p)
        self._producers = ProducerState()
        self._scan_producers_from(self._segments[0].base_offset)

    def reset_to(self, offset: int) -> None:
        """Drop everything and continue empty at `offset` (a follower whose log ends before the
        leader's log start: Kafka's truncateFullyAndStartAt)."""
        for seg in self._segments:
            seg.delete_files()
        self._segments = [Segment(self.directory, offset, self._config.index_interval_bytes)]
        self._bases = [offset]
        self._log_start_offset = self._recovery_point = self._high_watermark = offset
        self._epochs.reset()
        for _off, p in self._snapshots():
            safe_delete(p)
        self._producers = ProducerState()
        fsync_dir(self.directory)

    def _delete_oldest(self, n: int) -> int:
        freed = 0
        for seg in self._segments[:n]:
            freed += seg.size
            seg.delete_files()
        del self._segments[:n]
        self._bases = [s.base_offset for s in self._segments]
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        return freed

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: advance the log start offset to offset (<= high watermark), deleting whole
        segments below it. Returns the new log start offset."""
        if offset > self._high_watermark or offset < 0:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {offset}: high watermark is {self._high_watermark}")
        if offset <= self._log_start_offset:
            return self._log_start_offset
        self._log_start_offset = offset
        if self._active.size and self._active.next_offset <= offset:
            self.roll()
        n = 0
        while n < len(self._segments) - 1 and self._segments[n].next_offset <= offset:
            n += 1
        self._delete_oldest(n)
        return self._log_start_offset

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest non-active segments past retention.ms (by their max timestamp) or
        beyond retention.bytes. Returns bytes freed."""
        cfg = self._config
        if not cfg.deletes:
            return 0
        now = self._now_ms() if now_ms is None else now_ms
        clean_leftovers(self.directory)
        candidates = self._segments[:-1]
        n = 0
        if cfg.retention_ms >= 0:
            for seg in candidates:
                ts = seg.max_timestamp if seg.max_timestamp >= 0 else int(seg.log_path.stat().st_mtime * 1000)
                if now - ts <= cfg.retention_ms:
                    break
                n += 1
        if cfg.retention_bytes >= 0:
            diff = self.size_bytes - cfg.retention_bytes
            for k, seg in enumerate(candidates):
                if k < n:
                    diff -= seg.size
                    continue
                if diff - seg.size < 0:
                    break
                diff -= seg.size
                n = k + 1
        return self._delete_oldest(n) if n else 0

    # ---------------------------------------------------------------- compaction

    def cleanable(self, now_ms: int | None = None) -> list[SegmentRef]:
        """The closed segments to compact now (oldest first, from the first segment), or [] when
        the topic does not compact or nothing changed since the last cleaning: no segment was
        closed since and no kept tombstone has reached delete.retention.ms."""
        cfg = self._config
        closed = self._segments[:-1]
        if not cfg.compacts or not closed:
            return []
        now = self._now_ms() if now_ms is None else now_ms
        new_data = closed[-1].next_offset > self._cleaned_through
        tombstones_due = self._clean_again_ms is not None and now >= self._clean_again_ms
        if not new_data and not tombstones_due:
            return []
        refs = []
        for seg in closed:
            if seg.max_timestamp > now - cfg.min_compaction_lag_ms:
                break   # min.compaction.lag.ms: this segment and every later one are too young
            refs.append(SegmentRef(seg.base_offset, seg.log_path, seg.size, seg.max_timestamp, seg.next_offset,
                                   read=seg.read_at))
        return refs

    def install_cleaned(self, result: CleanResult) -> bool:
        """Swap in what cleaner.clean_steps() wrote, if the segments it read are still these (same
        base and size, closed). False (and the files discarded) when the log moved on meanwhile."""
        by_base = {seg.base_offset: (i, seg) for i, seg in enumerate(self._segments[:-1])}
        for ref in result.refs:
            hit = by_base.get(ref.base)
            if hit is None or hit[1].size != ref.size:
                result.discard()
                return False
        refs = {r.base: r for r in result.refs}
        try:
            for base, cleaned in result.outputs.items():
                if cleaned is not None:
                    check_cleaned(cleaned, refs[base])
        except OSError:
            result.discard()
            raise
        if result.outputs:
            # the producer snapshot first: a crash from here on reloads producer state from it,
            # not by scanning segments that lost some producer's last batch
            self.flush()
        gone: set[int] = set()
        try:
            for base, cleaned in sorted(result.outputs.items()):
                i, seg = by_base[base]
                if cleaned is None:
                    seg.delete_files()
                    gone.add(base)
                    continue
                seg.close()
                try:
                    swap_in(cleaned, seg.log_path)
                finally:   # the new file, or the old one if the swap failed: either is whole
                    fresh = Segment(self.directory, base, self._config.index_interval_bytes)
                    fresh.scan(verify_crc=False)
                    fresh.write_indexes()
                    self._segments[i] = fresh
        except BaseException:
            result.discard()
            raise
        finally:
            if gone:
                self._segments = [s for s in self._segments if s.base_offset not in gone]
            self._bases = [s.base_offset for s in self._segments]
            if result.outputs:
                fsync_dir(self.directory)
        self._cleaned_through = max(self._cleaned_through, result.refs[-1].next_offset)
        self._clean_again_ms = result.tombstones_due_ms
        self.tombstones_seen = dict(result.tombstones_seen)
        if result.outputs:
            self._emit("compacted", {"records_before": result.records_before, "records_after": result.records_after,
                                     "bytes_before": result.bytes_before, "bytes_after": result.bytes_after,
                                     "segments": len(result.refs)})
        return True

    def clean_failed(self, refs: list[SegmentRef]) -> None:
        """A cleaning of refs failed (a batch it cannot read, a file it could not write): not
        again until new segments close."""
        self._cleaned_through = max(self._cleaned_through, refs[-1].next_offset)
        self._clean_again_ms = None
