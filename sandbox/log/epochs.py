"""The leader-epoch cache of one partition (Kafka's leader-epoch-checkpoint): the first offset
each leader epoch wrote, so a replica can learn where its log and a new leader's part ways
(OffsetForLeaderEpoch, KIP-101/KIP-279). Persisted in Kafka's text format."""

from __future__ import annotations

from pathlib import Path

from .files import atomic_write

FILE_NAME = "leader-epoch-checkpoint"
UNDEFINED = -1


class LeaderEpochCache:
    """(epoch, start offset) entries with strictly increasing epochs and offsets."""

    def __init__(self, directory: Path | None) -> None:
        self.path = None if directory is None else Path(directory) / FILE_NAME
        self.entries: list[tuple[int, int]] = []
        self.unsaved = False   # a cut's change the file could not take yet (see _save_if_possible)
        if self.path is not None:
            self.entries = _read(self.path)

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> None:
        """Epoch `epoch` wrote its first record at start_offset (a batch appended, or this
        replica became leader at that log end). An older or equal epoch changes nothing."""
        if epoch < 0 or (self.entries and epoch <= self.entries[-1][0]):
            return
        # an epoch that wrote nothing (a leader elected and replaced before any append) gives
        # way to the next one starting at the same offset
        before = list(self.entries)
        while self.entries and self.entries[-1][1] >= start_offset:
            self.entries.pop()
        self.entries.append((epoch, start_offset))
        try:
            self._save()
        except OSError:
            # not saved (a full disk; Windows: another program holds the file): undone, so the
            # append that asked fails whole and its retry saves it, never batches of an epoch
            # the file lacks (after a crash, OffsetForLeaderEpoch would answer from the stale file)
            self.entries = before
            raise

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest epoch <= epoch that this log knows, the offset where it ended) as a leader
        answers OffsetForLeaderEpoch, as Kafka's LeaderEpochFileCache.endOffsetFor: the start of
        the next greater epoch, or the log end for the latest. An epoch older than every one
        known ended where the first known began (its records are gone from this log, or were
        never in it): (epoch, that start). (UNDEFINED, UNDEFINED) for -1, for an epoch newer
        than the latest, or when no epoch is known."""
        if epoch < 0 or not self.entries:
            return UNDEFINED, UNDEFINED
        latest = self.entries[-1][0]
        if epoch == latest:
            return latest, log_end_offset
        if epoch > latest:
            return UNDEFINED, UNDEFINED
        if epoch < self.entries[0][0]:
            return epoch, self.entries[0][1]
        for i, (e, _start) in enumerate(self.entries):
            if e > epoch:
                return self.entries[i - 1][0], self.entries[i][1]
        return latest, log_end_offset   # unreachable: the last entry is > epoch

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch that wrote `offset`: the latest one starting at or before it, as Kafka's
        LeaderEpochFileCache.epochForOffset; UNDEFINED when the offset is before every known
        epoch (or none is known)."""
        found = UNDEFINED
        for epoch, start in self.entries:
            if start > offset:
                break
            found = epoch
        return found

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was cut at end_offset: forget epochs that started at or after it."""
        kept = [(e, s) for e, s in self.entries if s < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._save_if_possible()

    def reset(self) -> None:
        if self.entries:
            self.entries = []
            self._save_if_possible()

    def _save_if_possible(self) -> None:
        """Save what a cut left. A file that cannot be written now (Windows: held by another
        program) keeps entries past the log end: harmless while nothing is appended (the next
        open drops them, truncate_from_end with the log end), so the log saves it before its
        next append (save_pending), which fails whole while it still cannot."""
        try:
            self._save()
        except PermissionError:
            self.unsaved = True

    def save_pending(self) -> None:
        if self.unsaved:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        lines = ["0", str(len(self.entries))] + [f"{e} {s}" for e, s in self.entries]
        atomic_write(self.path, ("\n".join(lines) + "\n").encode("ascii"), sync=True)
        self.unsaved = False


def _read(path: Path) -> list[tuple[int, int]]:
    """Entries of a checkpoint file; a missing or damaged file is an empty cache (the log
    rebuilds it from its batches' epochs)."""
    try:
        lines = path.read_text("ascii").split()
    except (FileNotFoundError, UnicodeDecodeError, OSError):
        return []
    try:
        if lines[0] != "0":
            return []
        n = int(lines[1])
        vals = [int(x) for x in lines[2:2 + 2 * n]]
    except (IndexError, ValueError):
        return []
    if len(vals) != 2 * n:
        return []
    entries = list(zip(vals[::2], vals[1::2]))
    for (e1, s1), (e2, s2) in zip(entries, entries[1:]):
        if e2 <= e1 or s2 < s1:
            return []
    return entries
