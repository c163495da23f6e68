"""Compactor: the compaction of one partition log, run in steps of about a megabyte (step()):
which closed segments to clean and when, the tombstones' first-seen times, and installing what
cleaner.clean_steps() wrote (or recovering from a pass that failed)."""

from __future__ import annotations

from typing import Callable, Generator

from .cleaner import CleanResult, Decompress, SegmentRef, check_cleaned, clean_steps, swap_in
from .files import fsync_dir
from .segment import Segment


class Compactor:
    """One per partition log (its owner keeps it as long as the log object): call step() from
    the log's owner between other work; nothing else of the log changes during a step, and the
    cleaner holds no file open between steps. Works on the log's segments as shrinking.py does.
    `warn` hears why a pass was skipped or not installed (the pass is not retried until new
    segments close)."""

    def __init__(self, log, *, decompress: Decompress | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.log = log
        self.decompress = decompress
        self._warn = warn
        self.tombstones_seen: dict[int, int] = {}   # tombstone offset -> first cleaning that saw it (ms)
        self.last_result: CleanResult | None = None  # what the last installed pass did
        self._cleaned_through: int | None = None    # closed segments below this were cleaned (None: the first's base)
        self._clean_again_ms: int | None = None     # ... and when a kept tombstone may go
        self._steps: Generator[None, None, CleanResult | None] | None = None
        self._refs: list[SegmentRef] = []

    # ---------------------------------------------------------------- the verb

    def step(self, now_ms: int) -> bool:
        """About a megabyte of compaction: starts a pass when one is due (now_ms times it),
        installs its result when it ends, and marks it failed on any error. True while the pass
        has more to do."""
        if self._steps is None:
            refs = self.cleanable(now_ms)
            if not refs:
                return False
            self._refs = refs
            self.last_result = None
            producers = self.log._producers.state.producers.values()
            self._steps = clean_steps(refs, self.log.config, now_ms, self.decompress, self.tombstones_seen,
                                      self.log._producers.txns.entries,
                                      frozenset(e.batches[-1][3] for e in producers if e.batches))
        try:
            next(self._steps)
            return True
        except StopIteration as done:
            self._steps = None
            try:
                if done.value is not None and self.install(done.value):
                    self.last_result = done.value
            except Exception as e:   # noqa: BLE001 - a failed swap: the log stays readable
                self._report(f"not installed: {e}")
                self.failed(self._refs)
        except Exception as e:   # noqa: BLE001 - a batch it cannot read, a segment deleted meanwhile
            self._steps = None
            self._report(f"skipped until new segments close: {e}")
            self.failed(self._refs)
        return False

    def close(self) -> None:
        """Abandon a pass under way (its files are removed): the log is gone or replaced."""
        if self._steps is not None:
            self._steps.close()
            self._steps = None

    def _report(self, what: str) -> None:
        if self._warn is not None:
            self._warn(f"compaction of {self.log.directory.name} {what}")

    # ---------------------------------------------------------------- its parts

    def cleanable(self, now_ms: int) -> list[SegmentRef]:
        """The closed segments to compact now (oldest first, from the first segment), or [] when
        the topic does not compact or nothing changed since the last cleaning: no segment was
        closed since and no kept tombstone has reached delete.retention.ms."""
        log = self.log
        if not log.opened:
            return []   # one segment, the active one: compaction cleans closed segments only
        cfg = log.config
        segments = log._segments
        closed = segments[:-1]
        if not cfg.compacts or not closed:
            return []
        through = segments[0].base_offset if self._cleaned_through is None else self._cleaned_through
        new_data = closed[-1].next_offset > through
        tombstones_due = self._clean_again_ms is not None and now_ms >= self._clean_again_ms
        if not new_data and not tombstones_due:
            return []
        refs = []
        stable = log.last_stable_offset
        for seg in closed:
            if seg.max_timestamp > now_ms - cfg.min_compaction_lag_ms:
                break   # min.compaction.lag.ms: this segment and every later one are too young
            if seg.next_offset > stable:
                break   # holds a transaction not ended (or not replicated) yet: as Kafka, not cleaned
            refs.append(SegmentRef(seg.base_offset, seg.log_path, seg.size, seg.max_timestamp, seg.next_offset,
                                   read=seg.read_at, segment=seg, mark=seg.mark()))
        return refs

    def install(self, result: CleanResult) -> bool:
        """Swap in what cleaner.clean_steps() wrote, if the segments it read are still these (the
        same segment objects, closed, holding the same bytes: no truncation cut or replaced them).
        False (and the files discarded) when the log moved on meanwhile."""
        log = self.log
        by_base = {seg.base_offset: (i, seg) for i, seg in enumerate(log._segments[:-1])}
        for ref in result.refs:
            hit = by_base.get(ref.base)
            if hit is None or hit[1].size != ref.size or (
                    ref.segment is not None and (hit[1] is not ref.segment or hit[1].mark() != ref.mark)):
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
            log._flush()
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
                    fresh = Segment(log.directory, base, log.config.index_interval_bytes)
                    fresh.scan(verify_crc=False)
                    fresh.write_indexes()
                    log._segments[i] = fresh
        except BaseException:
            result.discard()
            raise
        finally:
            if gone:
                log._segments = [s for s in log._segments if s.base_offset not in gone]
            log._bases = [s.base_offset for s in log._segments]
            if result.outputs:
                fsync_dir(log.directory)
        self._cleaned_through = max(self._through(), result.refs[-1].next_offset)
        self._clean_again_ms = result.tombstones_due_ms
        self.tombstones_seen = dict(result.tombstones_seen)
        if result.outputs:
            log._emit("compacted", {"records_before": result.records_before, "records_after": result.records_after,
                                    "bytes_before": result.bytes_before, "bytes_after": result.bytes_after,
                                    "segments": len(result.refs)})
        return True

    def failed(self, refs: list[SegmentRef]) -> None:
        """A cleaning of refs failed (a batch it cannot read, a file it could not write): not
        again until new segments close."""
        self._cleaned_through = max(self._through(), refs[-1].next_offset)
        self._clean_again_ms = None

    def _through(self) -> int:
        return self.log._segments[0].base_offset if self._cleaned_through is None else self._cleaned_through
