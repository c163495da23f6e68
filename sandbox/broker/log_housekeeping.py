"""Retention and compaction over every partition a broker holds (a part of BrokerState): the
retention check (log.retention.check.interval.ms) and the cleaner's steps between requests."""

from __future__ import annotations

import asyncio
import logging

from sandbox.compression import decompress
from sandbox.log.compactor import Compactor

log = logging.getLogger("sandbox.broker")

# unopened partitions (log/lazy.py) a retention check opens at most: an idle one past retention is
# opened to delete its records, and each open CRC-scans its segment on the event loop
LAZY_RETENTION_OPENS = 8


class LogHousekeeping:
    """Mixed into BrokerState (it owns partitions, config, clock and _compactors)."""

    def apply_retention(self) -> int:
        freed = 0
        now_ms = int(self.clock() * 1000)
        expiration_ms = self.config.producer_id_expiration_ms
        opened = 0
        for plog in list(self.partitions.values()):
            plog.housekeeping.expire_producers(now_ms, expiration_ms)   # in memory: the next snapshot writes it
            if not plog.opened and opened >= LAZY_RETENTION_OPENS:
                continue   # each open CRC-scans a segment on the loop: the rest at the next checks
            was = plog.opened
            try:
                freed += plog.housekeeping.apply_retention(now_ms)
            except Exception as e:   # noqa: BLE001 - one partition's failure never skips the others
                # Windows: a segment held by another program; a failing disk; a log that cannot be
                # opened: the log stays whole, tried again next check
                log.warning("retention of %s put off (tried again next check): %s", plog.directory.name, e)
            opened += plog.opened and not was
        return freed

    async def compact(self) -> None:
        """Log compaction of every compacting partition with closed segments to clean. Each
        partition's Compactor runs here, on the loop, a step of about a megabyte at a time between
        requests: nothing else touches the log meanwhile except between steps, and the cleaner
        holds no file open then."""
        for key in [k for k in self._compactors if k not in self.partitions]:
            del self._compactors[key]
        for key, plog in list(self.partitions.items()):
            compactor = self._compactors.get(key)
            if compactor is None or compactor.log is not plog:
                compactor = self._compactors[key] = Compactor(plog, decompress=decompress, warn=log.warning)
            while compactor.step(int(self.clock() * 1000)):
                await asyncio.sleep(0)
                if self.partitions.get(key) is not plog:   # deleted or re-created meanwhile
                    compactor.close()
                    break
