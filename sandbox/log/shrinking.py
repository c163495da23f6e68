"""What removes data from a partition log: truncation (replication's follower truncation),
DeleteRecords and retention (compaction is compactor.py's). A base of PartitionLog: these methods
work on its segments, offsets and producer state."""

from __future__ import annotations

import errno

from .errors import OffsetOutOfRangeError
from .files import clean_leftovers, fsync_dir
from .segment import Segment


class Shrinking:

    def truncate_to(self, offset: int) -> None:
        """Drop every batch containing an offset >= offset (a batch straddling offset goes too, so
        the new LEO is that batch's base offset). Room for replication's follower truncation.
        A segment file another program holds (Windows) stops it part way with the log whole,
        ending where that segment ends, and the PermissionError raised: called again, it goes on."""
        if offset >= self.log_end_offset:
            return
        loc = self._locate(offset)
        i, pos = (loc[0], loc[1]) if loc else (len(self._segments) - 1, self._active.size)
        # a cut on a segment's base keeps that segment, emptied: the log end is the cut (Kafka's
        # truncateTo), also when compaction took the end of the segment before it. One inside a
        # gap compaction left (only an unclean election's cut reaches one) drops the next segment
        cut_whole = pos == 0 and i > 0 and self._segments[i].base_offset > offset
        active = self._active
        try:
            self._drop_from_end(i if cut_whole else i + 1)
            if not cut_whole:
                seg = self._segments[i]
                seg.truncate(pos)
                seg.write_indexes()
        finally:
            self._after_cut()
        if self._active is not active:
            # a closed segment, maybe compacted, would take the next appends: they go to a new
            # one instead, whose base snapshot (the cut's state) a later cut reloads from, never
            # replaying batches compaction removed (producers.truncated)
            self._roll()

    def _drop_from_end(self, keep: int) -> None:
        """Delete the segments past the first `keep`, the last first, each taken out of the log
        once its file is gone: a held file stops this with the log still contiguous."""
        try:
            while len(self._segments) > keep:
                self._segments[-1].delete_files()
                self._segments.pop()
        finally:
            self._bases = [s.base_offset for s in self._segments]

    def _after_cut(self) -> None:
        """What follows the log end when segments were cut or dropped at the end."""
        leo = self.log_end_offset
        self._epochs.truncate_from_end(leo)
        self._high_watermark = min(self._high_watermark, leo)
        lowered = self._recovery_point > leo
        self._recovery_point = min(self._recovery_point, leo)
        self._log_start_offset = min(self._log_start_offset, leo)
        if lowered:
            self._rp_unsaved = True   # written before the next append (on_recovery_lowered)
        self._producers.truncated(self._segments, leo)

    def _reset_to(self, offset: int) -> None:
        """Drop everything and continue empty at `offset` (a follower whose log ends before the
        leader's log start: Kafka's truncateFullyAndStartAt). A held segment file stops it as
        it stops truncate_to."""
        try:
            self._drop_from_end(0)
        except PermissionError:
            self._after_cut()
            raise
        self._segments = [Segment(self.directory, offset, self._config.index_interval_bytes)]
        self._bases = [offset]
        self._log_start_offset = self._recovery_point = self._high_watermark = offset
        self._epochs.reset()
        self._producers.reset()
        fsync_dir(self.directory)

    def _delete_oldest(self, n: int) -> int:
        """Delete the `n` oldest segments, the first first, each taken out of the log once its
        file is gone: a held file (Windows) stops this with the log whole, raising; retention
        and DeleteRecords try again later. The bytes freed."""
        if n <= 0:
            return 0
        # the producer state first: a snapshot older than what is left would, after a crash,
        # bring back transactions whose markers went with these segments (open for ever). On a
        # full disk it is written after, in the room the deletion made: retention is what frees
        # a full disk, and a crash in between is safe, as the next open drops transactions a
        # snapshot says opened below the first segment (ProducerStore.load)
        snapshot_after = False
        try:
            self._producers.snapshot(self.log_end_offset, keep=self._bases[n:])
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            snapshot_after = True
        freed = 0
        try:
            for _ in range(n):
                seg = self._segments[0]
                seg.delete_files()
                self._segments.pop(0)
                freed += seg.size
        finally:
            self._bases = [s.base_offset for s in self._segments]
            self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
            self._producers.txns.drop_below(self._log_start_offset, self._bases)
        if snapshot_after:
            try:
                self._producers.snapshot(self.log_end_offset, keep=self._bases)
            except OSError:   # still no room: the next flush or roll writes it
                pass
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
            self._roll()
        try:
            self._delete_oldest(self._below_log_start())
        except PermissionError:
            pass   # a segment file held by another program (Windows): gone from the log already, its files at the next retention check
        return self._log_start_offset

    def _below_log_start(self) -> int:
        """How many segments (never the active one) hold only records below the log start offset."""
        n = 0
        while n < len(self._segments) - 1 and self._segments[n].next_offset <= self._log_start_offset:
            n += 1
        return n

    def _apply_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest segments past retention.ms (by their max timestamp) or beyond
        retention.bytes; the active one too, as Kafka's deletableSegments, once it is not empty
        and wholly below the high watermark (rolled first: a log keeps one segment, empty at the
        log end), so an idle topic's records do go. Returns bytes freed."""
        cfg = self._config
        below = self._below_log_start()   # DeleteRecords' whose files were held (Windows) when it ran
        if not cfg.deletes:
            return self._delete_oldest(below) if below else 0
        now = self._now_ms() if now_ms is None else now_ms
        clean_leftovers(self.directory)
        # as Kafka: only segments wholly below the high watermark (a replicated leader's records
        # its followers do not have yet are not committed, and must not go before they are)
        active = self._segments[-1]
        whole = active.size and active.next_offset <= self._high_watermark
        candidates = self._segments if whole else self._segments[:-1]
        upto = next((k for k, seg in enumerate(candidates) if seg.next_offset > self._high_watermark), None)
        if upto is not None:
            candidates = candidates[:upto]
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
        n = max(n, below)
        if n and n == len(self._segments):
            self._roll()   # the active segment goes too: a new empty one at the log end first
        return self._delete_oldest(n) if n else 0
