"""The broker's once-a-second checkpoint files, written in a worker thread.

Kafka writes its checkpoint files (recovery points, log starts, high watermarks) from a scheduler
thread. Written on the event loop, each write's two fsyncs held every client of the broker: 1-2 ms
a second while records flowed, up to 15 ms under a bulk load on this project's Linux VM, and
longer where an fsync is slower (Windows). LogDir.snapshot takes what the files say on the event
loop; the write goes to a worker thread, one at a time, and LogDir.write_snapshot never lets an
older snapshot overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Hashable

log = logging.getLogger("sandbox.broker")


class Checkpointer:
    def __init__(self, logs, in_thread: bool = True) -> None:
        self.logs = logs   # a LogDir
        self.in_thread = in_thread   # False: on the caller's thread (a simulation on virtual time)
        self._points: dict = {}   # recovery points last written
        self._hws: dict = {}      # high watermarks last written
        self._writing: asyncio.Future | None = None

    def write_if_moved(self, points: dict[Hashable, int], hws: dict[Hashable, int]) -> None:
        """The files again if a recovery point (a roll) or a replicated partition's high
        watermark moved since the last write; nothing while a write is in flight (the next call
        asks again). In a worker thread under a running event loop, else here."""
        if self._writing is not None and not self._writing.done():
            return
        if points == self._points and hws == self._hws:
            return
        snapshot = self.logs.snapshot(high_watermarks_only=points == self._points)

        def written(task: asyncio.Future | None = None) -> None:
            if task is not None and task.cancelled():
                return
            if task is not None and (e := task.exception()) is not None:
                if isinstance(e, OSError):   # a full disk, a file held open: written in a second
                    log.warning("checkpoint files not written (tried again in a second): %s", e)
                else:
                    log.error("checkpoint files not written", exc_info=e)
                return
            self._points, self._hws = points, hws
        try:
            loop = asyncio.get_running_loop() if self.in_thread else None
        except RuntimeError:
            loop = None
        if loop is None:
            self.logs.write_snapshot(snapshot)
            written()
            return
        self._writing = asyncio.ensure_future(loop.run_in_executor(None, self.logs.write_snapshot, snapshot))
        self._writing.add_done_callback(written)

    async def write_all(self, points: dict[Hashable, int], hws: dict[Hashable, int]) -> None:
        """The three files now (after the periodic flush), in a worker thread."""
        snapshot = self.logs.snapshot()
        try:
            if self.in_thread:
                await asyncio.to_thread(self.logs.write_snapshot, snapshot)
            else:
                self.logs.write_snapshot(snapshot)
        except PermissionError as e:   # Windows: a file another program holds: written at the next checkpoint
            log.warning("checkpoint files not written (tried again in a second): %s", e)
            return
        self._points, self._hws = points, hws

    async def wait(self) -> None:
        """Until a write in flight is done (a thread is not stopped by a cancel: before the
        journal folder is closed and its lock released, it must have finished; a write_all
        cancelled with its task is stopped by LogDir.close instead)."""
        if self._writing is not None:
            await asyncio.wait([self._writing])
