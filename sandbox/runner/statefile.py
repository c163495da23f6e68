"""The supervisor's state file: written atomically (tmp + os.replace, retried while Windows holds the
target open) so `sandbox status` in another process always reads a whole snapshot; the one writer
both supervisors (native and docker) publish through, with the identity and heartbeat readers check."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

HEARTBEAT_S = 1.0   # a state file is rewritten at least this often; readers call one 5 s old stale


def supervisor_identity() -> dict[str, Any]:
    """Who writes the state file: readers check that this very process still runs (pid, create time,
    command line: detach.same_process)."""
    try:
        import psutil

        me = psutil.Process()
        created, cmdline = me.create_time(), me.cmdline()
    except Exception:
        created = cmdline = None
    return {"supervisor_pid": os.getpid(), "supervisor_create_time": created, "supervisor_cmdline": cmdline}


class StatePublisher:
    """Writes a supervisor's snapshot when what matters in it changed (its key) or at least every
    HEARTBEAT_S (the heartbeat); a failed write is logged and retried at the next publish."""

    def __init__(self, path: Path | None, clock: Callable[[], float], *, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, refresh_s: float = HEARTBEAT_S) -> None:
        self.path = Path(path) if path else None
        self._clock, self._wall, self._sleep, self._refresh = clock, wall, sleep, refresh_s
        self._key: str | None = None
        self._at: float | None = None

    def publish(self, snapshot: dict[str, Any], key: str, force: bool = False) -> None:
        if self.path is None:
            return
        now = self._clock()
        stale = self._at is None or now - self._at >= self._refresh
        if not force and key == self._key and not stale:
            return
        try:
            write_state(self.path, {**snapshot, "heartbeat": self._wall()}, sleep=self._sleep)
        except OSError as e:
            import logging

            logging.getLogger("sandbox.runner").warning("could not write the state file %s: %s", self.path, e)
            return
        self._key, self._at = key, now


def write_state(path: Path, data: dict[str, Any], *, attempts: int = 8,
                sleep: Callable[[float], None] = time.sleep, private: bool = False, durable: bool = False) -> None:
    """`private`: readable and writable by its owner only (POSIX; a file that holds SCRAM keys).
    `durable`: on disk before it replaces the old copy (fsynced), so a power loss leaves the old or
    the new, never an empty file (the topic catalog: an empty one read back would leave a restore
    with nothing to put back; found by review)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)   # Windows: no CRT newline
    fd = os.open(tmp, flags, 0o600 if private else 0o666)
    try:
        if private and hasattr(os, "fchmod"):   # a leftover tmp file of that name keeps its own mode
            os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
            f.flush()
            if durable:
                os.fsync(f.fileno())
    except OSError:   # a full disk: the half-written copy would only take more of what is left
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    delay = 0.01
    for i in range(attempts):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:  # Windows: a reader has the file open right now
            if i == attempts - 1:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
            sleep(delay)
            delay = min(delay * 2, 0.5)


def read_state(path: Path, *, attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """The last snapshot, or None when there is none."""
    for i in range(attempts):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (PermissionError, ValueError):  # being replaced right now
            if i == attempts - 1:
                return None
            sleep(0.02)
    return None


class LockHeld(Exception):
    """Another process holds the lock; `holder`: the pid it wrote there (None if unreadable)."""

    def __init__(self, holder: int | None) -> None:
        super().__init__(f"held by pid {holder}" if holder else "held by another process")
        self.holder = holder


_LOCK_AT = 64   # Windows locks a byte range others cannot read: the holder's pid is written before it


def hold_lock(path: Path):
    """An exclusive lock on `path` for as long as the returned file stays open (closed, or its
    process gone, the lock is let go: never a stale lock). Its holder's pid is written in it.
    LockHeld at once when another process holds it (fcntl.flock; Windows: msvcrt.locking)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+b")
    try:
        if os.name == "nt":
            import msvcrt

            f.seek(_LOCK_AT)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise LockHeld(lock_holder(path)) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()).encode().ljust(_LOCK_AT - 1) + b"\n")
    f.flush()
    return f


def lock_holder(path: Path) -> int | None:
    """The pid the lock's holder (or its last holder) wrote in it."""
    try:
        with open(path, "rb") as f:
            return int(f.read(_LOCK_AT).strip() or 0) or None
    except (OSError, ValueError):
        return None
