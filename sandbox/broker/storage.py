"""Whether this broker's disk takes writes: a write that fails for want of space (or a failing
disk) is one `storage-error` EVENT, which the supervisor shows in `status` as the broker's
problem, and `storage-ok` once writes succeed again.

Kafka takes the log directory offline at the first such failure until the broker is restarted;
here the partitions stay (their logs are untouched by a failed write, which is never
acknowledged), clients are answered KAFKA_STORAGE_ERROR and retry, and serving resumes by itself
once space is freed. A produce that succeeds says so at once; without one (this broker leads
nothing written to, or only follows) `probe` tries a small write every second while failing,
so status never keeps telling of a disk that has space again."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

from sandbox.lifecycle import event_emitter

log = logging.getLogger("sandbox.broker")
emit_event = event_emitter(log)

STORAGE_ERRNOS = frozenset(n for n in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EIO, errno.EROFS)
                           if n is not None)
PROBE_NAME = ".storage-probe"
PROBE_BYTES = 4096


def is_storage_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in STORAGE_ERRNOS


def failed(state, directory: Path | str, e: OSError) -> None:
    """One EVENT line when writes start failing (`directory`: where the write failed)."""
    if not state.storage_failing:
        state.storage_failing = True
        state.storage_failed_in = Path(directory)
        emit_event("storage-error", {"path": str(directory), "message": e.strerror or str(e), "errno": e.errno})


def recovered(state) -> None:
    if state.storage_failing:
        state.storage_failing = False
        emit_event("storage-ok", {})


def _try_write(directory: Path) -> None:
    """A small write where the last one failed (its folder, or the data folder if that is gone)."""
    path = directory / PROBE_NAME
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


async def probe(state) -> None:
    """While writes fail: try one (in a worker thread: a failing disk may be slow), and say
    `storage-ok` when it succeeds."""
    if not state.storage_failing:
        return
    where = state.storage_failed_in
    if where is None or not where.is_dir():
        where = Path(state.config.data_dir)
    try:
        await asyncio.to_thread(_try_write, where)
    except OSError as e:
        if not is_storage_error(e) and not isinstance(e, FileNotFoundError):
            log.warning("cannot tell whether %s takes writes again: %s", where, e)
        return
    recovered(state)
