"""Transactional offset commits (TxnOffsetCommit) of one `__consumer_offsets` partition, as Kafka's
group coordinator keeps them: pending per (producer id, group) until the transaction's marker,
materialised by a commit marker, dropped by an abort. Pure bookkeeping, no I/O."""

from __future__ import annotations

from .offsets import CommittedOffset

TP = tuple[str, int]
View = dict[str, dict[TP, CommittedOffset]]


class TxnOffsets:
    """The pending transactional commits of one partition, and the log offset of the record
    behind every committed offset (a transaction's commit only replaces an offset committed
    before its own record, as Kafka's CommitRecordMetadataAndOffset.olderThan decides)."""

    def __init__(self) -> None:
        # producer id -> group -> (topic, partition) -> (offset, log offset of its record)
        self.pending: dict[int, dict[str, dict[TP, tuple[CommittedOffset, int]]]] = {}
        self.written_at: dict[tuple[str, TP], int] = {}
        # the log offset of the record behind the offset the view holds, where one was put in
        # after the partition loaded (a plain commit settled late never replaces a later one)
        self.applied_at: dict[tuple[str, TP], int] = {}

    def written(self, group: str, tp: TP, record_offset: int) -> None:
        """A plain (non-transactional) commit or tombstone of `tp` was written at `record_offset`."""
        self.written_at[(group, tp)] = record_offset

    def add(self, producer_id: int, group: str, tp: TP, committed: CommittedOffset, record_offset: int) -> None:
        self.pending.setdefault(producer_id, {}).setdefault(group, {})[tp] = (committed, record_offset)

    def is_pending(self, group: str, tp: TP | None = None) -> bool:
        """A transaction has an offset commit of `group` (for `tp`, if given) not yet completed."""
        for groups in self.pending.values():
            offs = groups.get(group)
            if offs and (tp is None or tp in offs):
                return True
        return False

    def producers(self) -> list[int]:
        return list(self.pending)

    def complete(self, producer_id: int, commit: bool, view: View, into: list | None = None) -> int:
        """The producer's transaction ended: on commit its offsets go into `view` (unless a later
        plain commit replaced them meanwhile), on abort they are dropped. Returns how many went in.
        `into`: (group, partition, offset) of those offsets are put there instead of into the view
        (a marker read back at a load past the high watermark: they wait for it)."""
        groups = self.pending.pop(producer_id, {})
        if not commit:
            return 0
        n = 0
        for group, offs in groups.items():
            for tp, (committed, at) in offs.items():
                if self.written_at.get((group, tp), -1) < at:
                    self.written_at[(group, tp)] = at
                    if into is not None:
                        into.append((group, tp, committed))
                    else:
                        view.setdefault(group, {})[tp] = committed
                        self.applied_at[(group, tp)] = at
                    n += 1
        return n

    def forget(self, group: str, tps: set[TP] | None = None) -> None:
        """The group (or some of its partitions) was deleted: its pending commits go too, as
        Kafka's removeOffsets drops pending transactional ones."""
        for pid in list(self.pending):
            offs = self.pending[pid].get(group)
            if offs is None:
                continue
            for tp in list(offs) if tps is None else [tp for tp in offs if tp in tps]:
                del offs[tp]
            if not offs:
                del self.pending[pid][group]
            if not self.pending[pid]:
                del self.pending[pid]
