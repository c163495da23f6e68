"""What a broker makes durable off its event loop (mixed into BrokerState): a rolled segment's
fsync, the periodic flush of every dirty partition, and the checkpoint files (checkpoints.py).
Each holds every client of the broker while it runs on the loop; here the slow part, the fsync,
runs in a worker thread wherever the OS allows it."""

from __future__ import annotations

import asyncio
import logging
import os

from sandbox.log import PartitionLog
from sandbox.log.files import fsync_and_close

from . import storage

# Windows refuses to rename or delete a file while any handle to it is open without delete
# sharing (Python's are): a duplicate held during an fsync would make a segment's retention or
# deletion fail for that long. There every flush stays on the loop, one partition at a time.
SYNC_IN_THREAD = os.name != "nt"
log = logging.getLogger("sandbox.broker")


class Durability:
    """Mixed into BrokerState (it owns partitions, replicas, _roll_syncs and _checkpoints)."""

    def checkpoint_if_moved(self) -> None:
        """Once a second: the checkpoint files if a roll moved a recovery point or a replicated
        partition's high watermark moved (in a worker thread: checkpoints.py)."""
        self._checkpoints.write_if_moved(*self._checkpointed())

    def _checkpointed(self) -> tuple[dict, dict]:
        """What the checkpoint files follow: recovery points, replicated high watermarks."""
        hws = {}
        for k in self.replicas.leading.keys() | self.replicas.following.keys():
            p = self.partitions.get(k)
            if p is not None:   # one not opened yet (a held file, say) has the one read at start
                hws[k] = p.high_watermark if p.opened else p.__dict__.get("_pending_hw")
        return {k: p.recovery_point for k, p in self.partitions.items()}, hws

    def _sync_rolled(self, plog: PartitionLog, seg) -> bool:
        """PartitionLog.roll_sync: fsync a segment that just rolled in a worker thread instead of
        in the append that rolled it, which held every client of this broker meanwhile (one
        1 GiB roll under a producer: 420 ms). A log's rolls complete in order. False (the roll
        fsyncs at once) outside a running event loop or when no handle can be opened."""
        try:
            loop = asyncio.get_running_loop()
            fd = seg.dup_handle()
        except (RuntimeError, OSError):   # no loop, or out of handles
            return False
        task = loop.create_task(self._finish_rolled(plog, seg, fd, seg.mark(), self._roll_syncs.get(plog)))
        self._roll_syncs[plog] = task
        task.add_done_callback(lambda t: self._roll_syncs.pop(plog, None) if self._roll_syncs.get(plog) is t else None)
        return True

    async def _finish_rolled(self, plog: PartitionLog, seg, fd: int, mark: tuple[int, int],
                             before: asyncio.Task | None) -> None:
        handed = False
        try:
            if before is not None:
                await asyncio.wait([before])
            handed = True   # the thread closes it, even if this task is cancelled meanwhile
            ok = await asyncio.to_thread(fsync_and_close, [fd])
        finally:
            if not handed:
                os.close(fd)
        if not ok:
            log.warning("could not fsync the rolled segment %s; the next flush tries again", seg.log_path)
            return
        try:
            plog.housekeeping.segment_synced(seg, mark)
        except OSError as e:   # its indexes not written (a full disk): the recovery point stays below it
            log.warning("could not write the indexes of the rolled segment %s (%s); the next flush "
                        "tries again", seg.log_path, e.strerror or e)

    async def checkpoint(self) -> None:
        """fsync what is dirty, then write the recovery checkpoint (in a worker thread), so a
        crash only rescans what arrived since (Kafka's recovery-point checkpoint, every 60 s by default).

        Without holding the event loop for it: measured with 64 partitions at 5,000 records/s,
        doing every flush in one go held it 115 ms every minute (produce latency 131 ms), and
        one partition's minute of heavy writes took 264 ms to fsync. Each partition's data is
        first fsynced in a worker thread (through duplicated handles, where the OS lets a file
        with an extra handle be renamed and deleted as usual: not Windows), then flushed as
        before on the loop, which then has little left to write; other work runs between
        partitions."""
        for tp, plog in list(self.partitions.items()):
            if not plog.housekeeping.dirty:
                continue
            if SYNC_IN_THREAD:
                fds = plog.housekeeping.sync_handles()
                if fds:
                    await asyncio.to_thread(fsync_and_close, fds)
                if self.partitions.get(tp) is not plog or not plog.housekeeping.dirty:
                    continue   # deleted, or flushed by something else (a roll, a stop) meanwhile
            try:
                plog.housekeeping.flush()
            except PermissionError as e:   # Windows: an index file another program holds for a while
                log.warning("could not flush %s-%s (%s); the next flush tries again", tp[0], tp[1], e)
            except OSError as e:   # a full or failing disk: said once (status shows it), the others go on
                if not storage.is_storage_error(e):
                    raise
                storage.failed(self, plog.directory, e)
            await asyncio.sleep(0)
        await self._checkpoints.write_all(*self._checkpointed())
