"""ReplicaView (`PartitionLog.replica`): what replication does to a partition log besides reading
it: appending a leader's batches as they are, the leader-epoch history, the high watermark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .batch import BatchHeader, validate_batches
from .errors import CorruptRecordError

if TYPE_CHECKING:
    from .partition import PartitionLog


class ReplicaView:
    """The replication verbs of one log. Holds nothing but the log: make one whenever needed.
    On an unopened log each verb opens it first (through the log's own attributes)."""

    __slots__ = ("_log",)

    def __init__(self, log: PartitionLog) -> None:
        self._log = log

    # ---------------------------------------------------------------- high watermark

    @property
    def high_watermark(self) -> int:
        return self._log.high_watermark

    @high_watermark.setter
    def high_watermark(self, value: int) -> None:
        """The committed offset (the ISR's smallest log end), kept within [log start, log end]."""
        log = self._log
        log._high_watermark = max(log._log_start_offset, min(value, log.log_end_offset))

    def set_replicated(self, replicated: bool) -> None:
        """Replicated: the high watermark moves only when told (the ISR's smallest log end).
        Not replicated: it is the log end, from now on and after every append."""
        log = self._log
        if replicated and not log.opened and log.__dict__.get("hw_follows_leo") is True:
            # one replica until now (a reassignment adds some): opened first, so everything it
            # holds stays committed (its log end), not taken from the log start at its first use
            log.open_now()
        log.hw_follows_leo = not replicated
        unchecked = log.__dict__.pop("_hw_unchecked", False)   # opened with no checkpointed HW
        if not log.opened:
            return
        if not replicated:
            log._high_watermark = log.log_end_offset
        elif unchecked:   # replicated, its checkpoint entry lost: from the log start, as Kafka's
            log._high_watermark = log._log_start_offset

    # ---------------------------------------------------------------- follower appends

    def append(self, records, *, now_ms: int | None = None) -> int:
        """Append a leader's batches as they are (a follower): same offsets, same leader epochs,
        same bytes; CRCs checked, nothing stamped. The first batch must start at or past the log
        end (the fetcher truncates first). Returns the new log end offset."""
        log = self._log
        if not len(records):
            return log.log_end_offset
        headers = validate_batches(records, max(log.config.max_message_bytes, 1 << 30), replicated=True)
        if not headers:
            return log.log_end_offset
        leo = log.log_end_offset
        first = headers[0]
        if first.base_offset < leo < first.next_offset and leo == log._log_start_offset:
            # an empty log starting inside the leader's first batch (the leader's log start was
            # moved into a batch by DeleteRecords, and this replica reset to it): it starts at
            # the batch's base instead, as Kafka's follower does, or it could never append again;
            # the leader's log start then moves it up again (follow_log_start)
            self.reset_to(first.base_offset)
            leo = log.log_end_offset
        if first.base_offset < leo:
            raise CorruptRecordError(f"replicated batch starts at offset {headers[0].base_offset}, "
                                     f"the log of {log.directory.name} ends at {leo}")
        # one starting past the log end is taken, as Kafka's follower takes it: compaction removed
        # what the leader had between (a compacted topic's new replica starts so)
        placed: list[tuple[int, BatchHeader]] = []
        pos = 0
        expect = leo
        messages = 0
        for h in headers:
            if h.base_offset < expect:
                raise CorruptRecordError(f"replicated batches overlap at offset {h.base_offset}")
            if h.leader_epoch > log._epochs.latest_epoch:
                # a new epoch's first batch past a gap (compaction removed what the leader had
                # between): the epoch may have begun anywhere in the gap, so it is taken to begin
                # at the gap's start. Taken at the batch, a follower that asked where the epoch
                # before ended would be told too late and keep records no leader ever had
                log._epochs.assign(h.leader_epoch, min(h.base_offset, expect))
            placed.append((pos, h))
            pos += h.size
            expect = h.next_offset
            messages += h.records_count
        # written straight from the caller's buffer (a view into the fetched reply): a copy of
        # every replicated byte cost a follower as much CPU as its CRC checks
        log._write(records, placed, expect - 1, messages,
                   log._now_ms() if now_ms is None else now_ms)
        return log.log_end_offset

    def follow_log_start(self, leader_log_start: int) -> int:
        """Move this follower's log start up to its leader's (DeleteRecords or retention there:
        those records are gone for good, and must not come back should this replica lead), as
        far as this replica's high watermark. Returns the log start offset."""
        log = self._log
        target = min(leader_log_start, log._high_watermark)
        if target > log._log_start_offset:
            return log.delete_records_before(target)
        return log._log_start_offset

    def forget_epochs_from(self, offset: int) -> None:
        """Forget the leader epochs that began at or after `offset` (the log was cut there, or
        they wrote nothing): the follower's next OffsetForLeaderEpoch asks about an older one."""
        self._log._epochs.truncate_from_end(offset)

    def reset_to(self, offset: int) -> None:
        """Drop everything and continue empty at `offset` (a follower whose log ends before the
        leader's log start: Kafka's truncateFullyAndStartAt)."""
        self._log._reset_to(offset)

    # ---------------------------------------------------------------- leader epochs

    @property
    def latest_epoch(self) -> int:
        """The newest leader epoch this log holds data (or a leadership start) of; -1 if none."""
        return self._log._epochs.latest_epoch

    def epoch_for_offset(self, offset: int) -> int:
        """The leader epoch that wrote `offset` (-1 if before every epoch known): ListOffsets'
        earliest answers the one of the log start offset."""
        return self._log._epochs.epoch_for_offset(offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest known epoch <= epoch, its end offset), as OffsetForLeaderEpoch answers it."""
        log = self._log
        return log._epochs.end_offset_for(epoch, log.log_end_offset)

    def begin_epoch(self, epoch: int) -> None:
        """This replica leads from now on in `epoch`, starting at its log end. An epoch below the
        ones the log holds (the coordinator's journal was destroyed and its topics re-created,
        epochs from 0 again) restarts the history: the old epochs mean nothing any more."""
        log = self._log
        try:
            if 0 <= epoch < log._epochs.latest_epoch:
                self.restart_epochs(epoch)
            log._epochs.assign(epoch, log.log_end_offset)
        except OSError:
            pass   # its file not writable now (a full disk, a file held): the epoch's first append assigns it

    def restart_epochs(self, epoch: int) -> None:
        """Forget the epoch history; everything up to the log end counts as `epoch`'s."""
        log = self._log
        log._emit("epochs-restarted", {"from": log._epochs.latest_epoch, "to": epoch})
        log._epochs.reset()
        if log.log_end_offset > log._log_start_offset:
            log._epochs.assign(epoch, log._log_start_offset)
