"""A partition log opened (and recovered) at its first use: see UnopenedPartitionLog."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .config import LogConfig
from .files import safe_rmtree
from .partition import PartitionLog


def unopened(directory: Path, config: LogConfig, *, recovery_point: int = 0, log_start_offset: int | None = None,
             clock: Callable[[], float] = time.time,
             on_event: Callable[[str, dict], None] | None = None,
             high_watermark: int | None = None) -> PartitionLog:
    """A log of an existing directory holding ONE segment, opened (recovered) at its first use:
    see UnopenedPartitionLog."""
    log = UnopenedPartitionLog.__new__(UnopenedPartitionLog)
    log.directory = Path(directory)
    log._config = config
    log._clock = clock
    log._on_event = on_event
    log._pending = (recovery_point, log_start_offset)
    log._pending_hw = high_watermark
    return log


class UnopenedPartitionLog(PartitionLog):
    """A partition log not read yet: opening 10,000 partitions (a handle, index files, a CRC scan
    of each active segment) would cost seconds before the broker serves, so LogDir.open() makes
    one of these for every directory holding a single segment and nothing else to finish.

    The first access to anything an opened log has and this object lacks (a read, an append, the
    log end offset, ...) lands in __getattr__, which runs the full open, including the recovery
    of open_segments (CRC scan of the segment and truncation of a torn or corrupt tail), turns
    the object into a plain PartitionLog and only then answers the access. So no read or write
    ever sees unrepaired data, and after its first use the log costs nothing extra. Safe to
    leave unopened because a single segment is the active one: retention and compaction never
    touch an active segment (retention opens it first when its file says it may be past
    retention), and nothing below the recovery point can be damaged in it
    without open_segments noticing (it CRC-scans the whole active segment). A partition with
    rolled segments is opened at start as before, so damaged acknowledged data still stops the
    broker from starting. No file handle is held until the first use (fewer handles on Windows).
    The methods below are what housekeeping (its facet, housekeeping.py) calls on every partition:
    they answer without opening."""

    opened = False
    _pending: tuple[int, int | None]   # (recovery point, log start offset) from the checkpoints

    def __getattr__(self, name: str):
        if name.startswith("__") or "_pending" not in self.__dict__:
            raise AttributeError(name)
        self.open_now()
        return getattr(self, name)

    def open_now(self) -> None:
        """Open (recover) the log now; it is a plain PartitionLog afterwards. On failure it stays
        unopened (the next access tries again and raises again)."""
        pending = self.__dict__.pop("_pending")
        before = set(self.__dict__)
        self.__class__ = PartitionLog
        try:
            self.directory.mkdir(parents=True, exist_ok=True)   # as the constructor does
            self._load(*pending, None, self.__dict__.get("_pending_hw"))   # listed now: the folder as it is
        except BaseException:
            for seg in self.__dict__.get("_segments", []):
                seg.close()
            for name in set(self.__dict__) - before:   # nothing of a half-done open is left: the
                del self.__dict__[name]                # next access opens it again from the start
            self.__class__ = UnopenedPartitionLog
            self._pending = pending
            raise

    @property
    def recovery_point(self) -> int:
        return self._pending[0]

    @property
    def _dirty(self) -> bool:
        return False

    def _checkpoint_offsets(self) -> tuple[int, int | None]:
        return self._pending[0], self._pending[1]   # as read from the checkpoints: nothing changed

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, cfg: LogConfig) -> None:
        self._config = cfg   # no segment open to tell

    def _flush(self, now_ms: int | None = None, *, if_due: bool = False) -> bool:
        return False   # nothing was appended

    def _apply_retention(self, now_ms: int | None = None) -> int:
        """Opened, then applied, only when its one segment may be past retention: written last
        (its file's time) longer ago than retention.ms, or larger than retention.bytes; an idle
        partition's records go as Kafka's do (retention takes the active segment too), and the
        others stay unopened (one directory listing each per retention check)."""
        cfg = self._config
        if not cfg.deletes or (cfg.retention_ms < 0 and cfg.retention_bytes < 0):
            return 0
        now = int(self._clock() * 1000) if now_ms is None else now_ms
        try:
            logs = [self.directory / n for n in os.listdir(self.directory) if n.endswith(".log")]
            st = [f.stat() for f in logs]
        except OSError:
            return 0
        due = any((cfg.retention_ms >= 0 and now - int(s.st_mtime * 1000) > cfg.retention_ms)
                  or (0 <= cfg.retention_bytes < s.st_size) for s in st)
        if not due:
            return 0
        self.open_now()
        return self._apply_retention(now_ms)

    def close(self, *, flush: bool = True) -> None:
        pass   # no handle open, nothing to persist

    def _delete(self) -> None:
        self.__dict__.pop("_pending", None)
        self.__class__ = PartitionLog
        self._segments = []
        safe_rmtree(self.directory)
