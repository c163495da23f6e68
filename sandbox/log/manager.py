"""LogDir: one broker's journal folder: the `.lock` file, Kafka's recovery-point and log-start
checkpoint files, and the set of `<topic>-<partition>` PartitionLogs (create, open, delete).
"""
from __future__ import annotations

import errno
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Mapping

from sandbox.partition_metadata import DELETED_MARK, PARTITION_METADATA, kafka_uuid, read_partition_metadata

from .config import LogConfig
from .errors import JournalLockedError, UnrecoverableJournalError
from .files import REMOVER, RETRIES, atomic_write, clean_leftovers, retry, safe_delete, safe_rmtree
from .lazy import unopened
from .partition import PartitionLog

LOCK_FILE = ".lock"
from .epochs import FILE_NAME as EPOCHS_FILE

RECOVERY_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
HW_CHECKPOINT = "replication-offset-checkpoint"   # replicated partitions' high watermarks
_PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")
_DELETE_DIR = re.compile(r"^.+-\d+\.[0-9a-f]+-delete$")


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """`my.topic-name-3` -> ("my.topic-name", 3); the partition follows the LAST dash."""
    if _DELETE_DIR.match(name):
        return None
    m = _PARTITION_DIR.match(name)
    return (m.group(1), int(m.group(2))) if m else None


_LOCK_TOKEN = uuid.uuid4().hex  # tells this process's locks from an earlier process with the same pid


def _parse_lock(text: str) -> tuple[int, str]:
    """'PID TOKEN' (or an older 'PID') -> (pid, token); (-1, '') when unreadable."""
    parts = text.split()
    try:
        return int(parts[0]), parts[1] if len(parts) > 1 else ""
    except (ValueError, IndexError):
        return -1, ""


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (never signals or kills it)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that exited but was not reaped yet (e.g. whose parent died first) holds nothing."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False   # no /proc (macOS): signal 0 is all we can ask


def read_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Kafka's offset checkpoint text: version line (0), count line, `topic partition offset` lines.
    Raises ValueError if malformed; a missing file is an empty mapping."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    if len(lines) < 2 or lines[0].strip() != "0":
        raise ValueError(f"{path}: unsupported checkpoint version line {lines[:1]!r}")
    count = int(lines[1])
    entries = [ln for ln in lines[2:] if ln.strip()]
    if len(entries) != count:
        raise ValueError(f"{path}: expected {count} entries, found {len(entries)}")
    out = {}
    for ln in entries:
        topic, part, off = ln.split(" ")
        out[(topic, int(part))] = int(off)
    return out


def write_checkpoint(path: Path, offsets: Mapping[tuple[str, int], int]) -> None:
    lines = ["0", str(len(offsets))] + [f"{t} {p} {o}" for (t, p), o in sorted(offsets.items())]
    atomic_write(path, ("\n".join(lines) + "\n").encode())


def _single_segment(listing: list[str]) -> bool:
    """True when a partition folder holds one segment and nothing an open must finish first (an
    interrupted delete, write or compaction swap): such a log is opened at its first use (see
    lazy.UnopenedPartitionLog). Rolled segments hold acknowledged data that open() checks
    before the broker serves, so damage there still stops the start."""
    logs = 0
    for n in listing:
        if n.endswith(".log"):
            logs += 1
        elif not n.endswith((".index", ".timeindex", ".txnindex", ".snapshot")) and n not in (
                EPOCHS_FILE, PARTITION_METADATA):
            return False
    return logs == 1


class LogDir:
    """All partitions of one broker's journal folder. Call open() first, close() last."""

    def __init__(self, root: Path, default_config: LogConfig, *, clock: Callable[[], float] = time.time,
                 on_event: Callable[[str, dict], None] | None = None, background_removal: bool = False) -> None:
        """background_removal: while open, big deleted segments and deleted partition folders are
        removed in a worker thread (files.REMOVER), not on the caller's (a server's event loop)."""
        self.root = Path(root)
        self.default_config = default_config
        self._clock = clock
        self._on_event = on_event
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._locked = False
        self._background = background_removal
        self._removing = False   # holds a use of REMOVER
        self.roll_sync = None   # given to every log it opens or creates: see PartitionLog.roll_sync
        # checkpoint files may be written from a worker thread (write_snapshot): one writer at a
        # time, and a snapshot taken before another already written is not written over it
        self._write_lock = threading.Lock()
        # partitions deleted without the files rewritten -> the snapshot count then: the
        # recovery-point file may still name them until a snapshot taken later is written
        self._deleted_unchecked: dict[tuple[str, int], int] = {}
        self._snapshots = 0
        self._written: dict[str, int] = {}
        self._closed = False   # set by close(): a worker thread's write left behind writes nothing
        # deleted partitions whose folder open() found still there and could not remove (DELETED_MARK)
        self.refused_deletions: set[tuple[str, int]] = set()

    def _emit(self, kind: str, info: dict) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)

    def _partition_events(self, tp: tuple[str, int]) -> Callable[[str, dict], None]:
        def emit(kind: str, info: dict) -> None:
            self._emit(kind, {"topic": tp[0], "partition": tp[1], **info})
        return emit

    # ---------------------------------------------------------------- lock

    def _acquire_lock(self) -> None:
        lock = self.root / LOCK_FILE
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(lock, "r", encoding="utf-8") as f:
                        text = f.read().strip()
                except FileNotFoundError:
                    continue
                pid, token = _parse_lock(text)
                # a container restarts its service with the same pid (1): a lock naming our own pid
                # that this process did not write is stale
                mine = pid == os.getpid() and token == _LOCK_TOKEN
                if pid > 0 and pid_alive(pid) and (pid != os.getpid() or mine):
                    raise JournalLockedError(
                        f"journal {self.root} is locked by running process {pid} ({lock}); "
                        f"stop that process (or use another data directory) and try again") from None
                safe_delete(lock)
                self._emit("stale-lock-removed", {"path": str(lock), "pid": pid})
                continue
            try:
                os.write(fd, f"{os.getpid()} {_LOCK_TOKEN}".encode())
            finally:
                os.close(fd)
            self._locked = True
            if self._background and not self._removing:
                REMOVER.acquire()
                self._removing = True
            return
        raise UnrecoverableJournalError(f"could not take the journal lock {lock}")

    def _release_lock(self) -> None:
        if self._removing:   # what is queued is removed while the lock keeps the folder ours
            self._removing = False
            REMOVER.release()
        if self._locked:
            safe_delete(self.root / LOCK_FILE)
            self._locked = False

    # ---------------------------------------------------------------- open / checkpoints

    def _read_checkpoint(self, name: str) -> dict[tuple[str, int], int]:
        try:
            return read_checkpoint(self.root / name)
        except (ValueError, OSError) as e:
            self._emit("checkpoint-unreadable", {"path": str(self.root / name), "error": str(e)})
            return {}

    def open(self, topic_configs: Mapping[str, LogConfig] | None = None) -> dict[tuple[str, int], PartitionLog]:
        """Lock, clean leftovers, read checkpoints and open (recover) every partition directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._closed = False
        try:
            clean_leftovers(self.root)
            for p in self.root.iterdir():
                if p.is_dir() and _DELETE_DIR.match(p.name):   # a refused one: left for the next open
                    try:
                        safe_rmtree(p)
                    except OSError as e:   # held (Windows), or "not empty" behind a held file
                        self._emit("delete-deferred", {"path": str(p), "error": str(e)})
            self.refused_deletions = set()
            recovery = self._read_checkpoint(RECOVERY_CHECKPOINT)
            starts = self._read_checkpoint(LOG_START_CHECKPOINT)
            hws = self._read_checkpoint(HW_CHECKPOINT)
            topic_configs = topic_configs or {}
            with os.scandir(self.root) as entries:   # names and types in one call, no stat each
                dirs = sorted((e.name, Path(e.path)) for e in entries if e.is_dir())
            for name, p in dirs:
                tp = parse_partition_dir(name)
                if tp is None:
                    continue
                listing = os.listdir(p)
                if DELETED_MARK in listing:   # deleted, but a file of it was held: never opened again
                    self._remove_deleted(tp, p)
                    continue
                kind = unopened if _single_segment(listing) else PartitionLog
                args = dict(recovery_point=recovery.get(tp, 0), log_start_offset=starts.get(tp), clock=self._clock,
                            on_event=self._partition_events(tp), high_watermark=hws.get(tp))
                config = topic_configs.get(tp[0], self.default_config)
                try:
                    self._logs[tp] = kind(p, config, **args, **({"listing": listing} if kind is PartitionLog else {}))
                except PermissionError as e:
                    # Windows: a file another program holds stopped its recovery (a cut it had to
                    # make): it is opened at its first use instead, and refused until then, rather
                    # than stop the whole broker from starting
                    self._emit("open-deferred", {"topic": tp[0], "partition": tp[1], "error": str(e)})
                    self._logs[tp] = unopened(p, config, **args)
                if self.roll_sync is not None:
                    self._logs[tp].roll_sync = self.roll_sync
                self._logs[tp].on_recovery_lowered = self._recovery_lowered
                if PARTITION_METADATA in listing:
                    self._logs[tp].topic_id = read_partition_metadata(p / PARTITION_METADATA)
        except BaseException:
            for log in self._logs.values():
                log.close()
            self._logs.clear()
            self._release_lock()
            raise
        return dict(self._logs)

    @property
    def logs(self) -> dict[tuple[str, int], PartitionLog]:
        return dict(self._logs)

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def create(self, topic: str, partition: int, config: LogConfig | None = None) -> PartitionLog:
        """Open the partition's log, creating its directory; an existing log is returned as is."""
        tp = (topic, partition)
        if tp in self._logs:
            return self._logs[tp]
        if not topic or "/" in topic or "\\" in topic or topic in (".", ".."):
            raise ValueError(f"invalid topic name {topic!r}")
        if partition < 0:
            raise ValueError(f"invalid partition {partition}")
        folder = self.root / f"{topic}-{partition}"
        existed = folder.exists()
        if existed and os.path.lexists(folder / DELETED_MARK):   # a deleted partition's, still held
            self.refused_deletions.discard(tp)
            self._remove_deleted(tp, folder)
            if tp in self.refused_deletions:
                raise PermissionError(errno.EACCES, "the folder of a deleted partition of that name "
                                      "is still held by another program", str(folder))
            existed = False
        try:
            log = PartitionLog(folder, config or self.default_config, clock=self._clock,
                               on_event=self._partition_events(tp))
        except OSError:   # a full disk, no handles: no half-made folder is left behind
            if not existed:   # all it holds, this attempt made
                try:
                    safe_rmtree(folder)
                except OSError:
                    pass
            raise
        if self.roll_sync is not None:
            log.roll_sync = self.roll_sync
        log.on_recovery_lowered = self._recovery_lowered
        self._logs[tp] = log
        with self._write_lock:
            # a partition of that name was deleted without the files rewritten: their entries for
            # it (recovery point, log start) would have the next start trust this new log's
            # unsynced records, or empty it as a log whose start is past its end. Written
            # before its first append
            log._rp_unsaved = tp in self._deleted_unchecked
        return log

    def record_topic_id(self, topic: str, partition: int, topic_id: uuid.UUID) -> None:
        """Write the partition folder's partition.metadata if it does not name `topic_id` yet
        (a new folder, one of an earlier version, or a topic the metadata gave a new id)."""
        log = self._logs.get((topic, partition))
        if log is None or log.topic_id == topic_id:
            return
        try:
            # not fsynced (nor is Kafka's at once): a torn file reads as no id, as a missing one
            atomic_write(log.directory / PARTITION_METADATA,
                         f"version: 0\ntopic_id: {kafka_uuid(topic_id)}\n".encode("ascii"), sync=False)
        except OSError as e:   # a full disk: the id is written at the next metadata change
            self._emit("partition-metadata-unwritable", {"topic": topic, "partition": partition, "error": str(e)})
            return
        log.topic_id = topic_id

    def _close(self, topic: str, partition: int, *, flush: bool = True) -> Path:
        """Forget and close a partition's log (flush=False: without persisting it, as it is
        deleted next); its directory."""
        log = self._logs.pop((topic, partition), None)
        if log is None:
            return self.root / f"{topic}-{partition}"
        log.close(flush=flush)
        return log.directory

    def set_aside(self, topic: str, partition: int, *, retries: int = RETRIES) -> Path | None:
        """Close the log and rename its directory to `<topic>-<partition>.<hex>-stray` (Kafka's
        name for a stray log it keeps), which no open() takes for a partition; the checkpoint
        files are rewritten without it. The new path, None if there was no directory."""
        directory = self._close(topic, partition)
        if not directory.exists():
            return None
        target = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}-stray")
        retry(lambda: os.replace(directory, target), retries=retries)
        self.checkpoint()
        return target

    def delete_partition(self, topic: str, partition: int, checkpoint: bool = True, *,
                         retries: int = RETRIES) -> None:
        """Close the log, rename its directory to `<topic>-<partition>.<hex>-delete`, remove it,
        then rewrite the checkpoint files without it (unless `checkpoint` is False). `retries`:
        tries of the rename while Windows refuses it (1: once, for a caller that tries again later)."""
        directory = self._close(topic, partition, flush=False)
        if not directory.exists():
            return
        target = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}-delete")
        try:
            retry(lambda: os.replace(directory, target), retries=retries)
        except OSError:
            self._mark_deleted(directory)
            raise
        safe_rmtree(target, background=self._background,   # a refused removal: left for the next open()
                    on_refused=lambda e: self._emit("delete-deferred", {"path": str(target), "error": str(e)}))
        if checkpoint:
            self.checkpoint()
        else:
            with self._write_lock:
                self._deleted_unchecked[(topic, partition)] = self._snapshots

    def _mark_deleted(self, directory: Path) -> None:
        """A deleted partition's folder the file system would not let go (on Windows: another
        program holds one of its files) gets DELETED_MARK, so no later start opens it again as the
        partition (a topic deleted and made again would serve the deleted one's records) while the
        broker that tries again each second forgets it when it stops."""
        try:
            with open(directory / DELETED_MARK, "xb"):
                pass
        except FileExistsError:
            pass
        except OSError as e:   # a full disk: the folder is still doomed while this process runs
            self._emit("delete-mark-unwritable", {"path": str(directory), "error": str(e)})

    def _remove_deleted(self, tp: tuple[str, int], directory: Path) -> None:
        """At open: a folder marked deleted is removed now, once (renamed out of the way first, as
        any deleted partition); one still held is noted in refused_deletions, for the broker to
        try again each second and to make no partition of that name before it is gone."""
        try:
            self.delete_partition(*tp, checkpoint=False, retries=1)
        except OSError as e:
            self.refused_deletions.add(tp)
            self._emit("delete-deferred", {"path": str(directory), "error": str(e)})

    def checkpoint(self) -> None:
        """Write the three checkpoint files atomically (no fsync of the logs themselves)."""
        self.write_snapshot(self.snapshot())

    def _recovery_lowered(self) -> None:
        """PartitionLog.on_recovery_lowered: before the first append to a log whose recovery
        point a cut lowered (or a new log in a deleted one's name), the recovery-point and
        log-start files are written, on the caller's thread (as Kafka's truncateTo): once for every log cut
        meanwhile. A snapshot taken earlier and written later by a worker thread never undoes it
        (write_snapshot). OSError when they cannot be written: the append fails (nothing
        written), and the next one tries again."""
        seq, files = self.snapshot()
        # the recovery points and log starts: the high watermarks' file does not guard appends,
        # and one that cannot be written (a held file) must not stop them
        self.write_snapshot((seq, {name: files[name] for name in (RECOVERY_CHECKPOINT, LOG_START_CHECKPOINT)}))
        for log in self._logs.values():
            if log.__dict__.get("_rp_unsaved"):
                log._rp_unsaved = False

    def checkpoint_high_watermarks(self) -> None:
        """Write the replicated partitions' high watermarks (Kafka's replication-offset-checkpoint),
        so a restarted replica never shows consumers more than was committed."""
        self.write_snapshot(self.snapshot(high_watermarks_only=True))

    def snapshot(self, high_watermarks_only: bool = False) -> tuple[int, dict[str, dict[tuple[str, int], int]]]:
        """What the checkpoint files would say now (taken where the logs change: the event loop),
        for write_snapshot, which may run in a worker thread, as Kafka writes its checkpoints
        from a scheduler thread (an fsync on the event loop held every client of the broker, up to
        15 ms under a bulk load here, longer on Windows)."""
        files = {}
        if not high_watermarks_only:
            points = {tp: log.housekeeping.checkpoint_offsets() for tp, log in self._logs.items()}
            files[RECOVERY_CHECKPOINT] = {tp: rp for tp, (rp, _s) in points.items()}
            files[LOG_START_CHECKPOINT] = {tp: start for tp, (_r, start) in points.items() if start is not None}
        files[HW_CHECKPOINT] = self._high_watermarks()
        self._snapshots += 1
        return self._snapshots, files

    def write_snapshot(self, snapshot: tuple[int, dict[str, dict[tuple[str, int], int]]]) -> None:
        """Write a snapshot's files, each unless a later snapshot's is written already (a worker
        thread's write finishing after the event loop wrote a newer one must not undo it: an
        older log start would show deleted records again after a restart)."""
        seq, files = snapshot
        for name, offsets in files.items():
            with self._write_lock:   # a file at a time: the loop waits for one write at most
                if self._closed:   # the journal's lock may be gone: the folder is not ours
                    return
                if self._written.get(name, 0) < seq:
                    write_checkpoint(self.root / name, offsets)
                    self._written[name] = seq
                    if name == LOG_START_CHECKPOINT:   # a full snapshot: the recovery points too
                        for tp in [tp for tp, at in self._deleted_unchecked.items() if at < seq]:
                            del self._deleted_unchecked[tp]

    def _high_watermarks(self) -> dict[tuple[str, int], int]:
        hws = {}
        for tp, log in self._logs.items():
            if log.__dict__.get("hw_follows_leo"):
                continue   # known to have one replica: its log end is its high watermark
            if log.__dict__.get("_hw_unchecked"):
                continue   # opened without an entry, not settled yet: nothing to keep
            # replicated, or not settled by the metadata yet (the entry read at start is kept)
            hw = log.high_watermark if log.opened else log.__dict__.get("_pending_hw")
            if hw is not None:
                hws[tp] = hw
        return hws

    def flush_all(self) -> None:
        for log in self._logs.values():
            log.housekeeping.flush()
        self.checkpoint()

    def close(self) -> list[str]:
        """Flush and close every log, write checkpoints, release the lock. What could not be
        flushed (a full disk) is returned, one "what: why" each, not raised: every log is closed
        anyway, and the next start rescans whatever the last flush before did not cover."""
        unflushed: list[str] = []
        try:
            for key, log in self._logs.items():
                try:
                    log.close()
                except OSError as e:
                    unflushed.append(f"{key}: {e.strerror or e}")
            if self._locked:
                try:
                    self.checkpoint()
                except OSError as e:
                    unflushed.append(f"checkpoint files: {e.strerror or e}")
        finally:
            with self._write_lock:
                self._closed = True
            self._logs.clear()
            self._release_lock()
        return unflushed
