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
from pathlib import Path

from sandbox.folder_probe import try_write
from sandbox.lifecycle import event_emitter

log = logging.getLogger("sandbox.broker")
emit_event = event_emitter(log)

STORAGE_ERRNOS = frozenset(n for n in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EIO, errno.EROFS)
                           if n is not None)
PROBE_BYTES = 4096   # a page: a disk with less free than that is full for the journal


def is_storage_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in STORAGE_ERRNOS


def failed(state, directory: Path | str, e: OSError) -> None:
    """Writes fail (`directory`: where one did): one EVENT line when they start failing."""
    state.storage_failing = True
    state.storage_failures += 1
    state.storage_failure = {"path": str(directory), "message": e.strerror or str(e), "errno": e.errno}
    _tell(state)


def recovered(state) -> None:
    state.storage_failing = False
    _tell(state)


def after_append(state, plog) -> None:
    """After an append that did not raise: the flush it asked for (flush.messages / flush.ms) may
    still have failed (PartitionLog.flush_failed); else writes succeed again, if they had not."""
    if plog.flush_failed is not None:
        failed(state, plog.directory, plog.flush_failed)
    elif state.storage_failing:
        recovered(state)


def _tell(state) -> None:
    """Say the state if the log does not say it yet. The EVENT goes to the service's log, which is
    on the same disk: while it is full the line may not be written, and then it is said again
    (by the next failure or success, or by `probe` within a second), else the supervisor would
    show the state it read last for ever. storage_told: what the log says (None: unknown)."""
    if state.storage_told == state.storage_failing:
        return
    if state.storage_failing:
        written = emit_event("storage-error", state.storage_failure or {})
    else:
        written = emit_event("storage-ok", {})
    # not written: maybe lost, maybe kept in the stream's buffer and written later; either way
    # nothing is known of what the log says, and the state is said again next time
    state.storage_told = state.storage_failing if written else None


async def probe(state) -> None:
    """While writes fail: try one (in a worker thread: a failing disk may be slow), and say
    `storage-ok` when it succeeds and no write failed meanwhile. Every second (server.py), also
    to say again what the log could not take."""
    _tell(state)
    if not state.storage_failing:
        return
    failures = state.storage_failures
    try:
        await asyncio.to_thread(try_write, Path(state.config.data_dir), PROBE_BYTES)
    except OSError as e:
        if not is_storage_error(e) and not isinstance(e, FileNotFoundError):
            log.warning("cannot tell whether %s takes writes again: %s", state.config.data_dir, e)
        return
    if state.storage_failures == failures:
        recovered(state)
