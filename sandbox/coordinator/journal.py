"""MetadataJournal: the coordinator's durable storage. An append-only `metadata.log` of
CRC-checked JSON lines (one line per batch of records), a `snapshot.json`, and a pid lock file.
"""
from __future__ import annotations

import json
import os
import uuid
import re
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

LOG_NAME = "metadata.log"
SNAPSHOT_NAME = "snapshot.json"
LOCK_NAME = "coordinator.lock"
SNAPSHOT_FORMAT = 1
_LINE = re.compile(rb"([0-9a-f]{8}) ([0-9]+) (.*)", re.DOTALL)

EventSink = Callable[[str, dict], None]


class JournalCorruptError(Exception):
    """The journal cannot be read back safely (corrupt snapshot, or damage before valid data)."""


class JournalLockedError(Exception):
    """Another live process holds the coordinator journal."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def encode_line(offset: int, records: list[dict]) -> bytes:
    """One journal line: `<crc32 hex> <payload length> <payload>\\n`."""
    payload = _dumps({"offset": offset, "records": records})
    return b"%08x %d %s\n" % (zlib.crc32(payload), len(payload), payload)


def _decode_line(line: bytes) -> tuple[int, list[dict]] | None:
    m = _LINE.fullmatch(line)
    if m is None:
        return None
    payload = m.group(3)
    if len(payload) != int(m.group(2)) or zlib.crc32(payload) != int(m.group(1), 16):
        return None
    try:
        batch = json.loads(payload)
        offset, records = batch["offset"], batch["records"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(offset, int) or not isinstance(records, list):
        return None
    return offset, records


_LOCK_TOKEN = uuid.uuid4().hex  # tells this process's locks from an earlier process with the same pid


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (never signals it; Windows-safe)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would TerminateProcess on Windows
        import ctypes
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # ERROR_ACCESS_DENIED: exists, not ours
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


def _retry_permission(action: Callable[[], None], attempts: int = 20) -> None:
    """Run a rename/remove, retrying while Windows reports the file busy."""
    delay = 0.01
    for attempt in range(attempts):
        try:
            action()
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MetadataJournal:
    """Call load() once, then append() batches; write_snapshot() compacts the log."""

    def __init__(self, directory: Path, on_event: EventSink | None = None, *,
                 snapshot_every: int = 1000) -> None:
        self.directory = Path(directory)
        self.snapshot_every = snapshot_every
        self._on_event = on_event or (lambda kind, detail: None)
        self._log: Any = None
        self._next_offset = 0
        self._since_snapshot = 0
        self._locked = False
        # where the log ends cleanly after a failed append whose bytes could not be cut off (a
        # disk that refuses even the truncate): cut before anything else is appended
        self._clean_end: int | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def snapshot_path(self) -> Path:
        return self.directory / SNAPSHOT_NAME

    @property
    def next_offset(self) -> int:
        return self._next_offset

    @property
    def records_since_snapshot(self) -> int:
        return self._since_snapshot

    @property
    def snapshot_due(self) -> bool:
        return self._since_snapshot >= self.snapshot_every

    # ----------------------------------------------------------------- lock
    def _lock(self) -> None:
        path = self.directory / LOCK_NAME
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    parts = path.read_text(encoding="ascii").split()
                    pid, token = int(parts[0]), parts[1] if len(parts) > 1 else ""
                except (ValueError, IndexError, OSError, UnicodeDecodeError):
                    pid, token = 0, ""
                # a container restarts its service with the same pid (1): a lock naming our own pid
                # that this process did not write is stale
                if pid_alive(pid) and (pid != os.getpid() or token == _LOCK_TOKEN):
                    raise JournalLockedError(
                        f"The coordinator journal in {self.directory} is in use by process "
                        f"{pid}; stop that process first (or remove {path} if it is gone)."
                    ) from None
                try:
                    _retry_permission(path.unlink)
                except FileNotFoundError:
                    pass
                self._on_event("stale-lock", {"service": "coordinator", "pid": pid,
                                              "path": str(path)})
                continue
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"{os.getpid()} {_LOCK_TOKEN}")
            self._locked = True
            return
        raise JournalLockedError(f"Could not take the lock {path}.")

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            try:
                _retry_permission((self.directory / LOCK_NAME).unlink)
            except FileNotFoundError:
                pass

    # ----------------------------------------------------------------- load
    def load(self) -> tuple[dict | None, list[dict]]:
        """Return (snapshot state or None, records after the snapshot, in order). Repairs a
        torn tail; raises JournalCorruptError when the journal cannot be trusted."""
        if self._log is not None:
            raise RuntimeError("load() was already called")
        tmp = self.snapshot_path.with_name(SNAPSHOT_NAME + ".tmp")
        if tmp.exists():
            _retry_permission(tmp.unlink)
        state, snap_offset = self._read_snapshot()
        batches = self._read_log()
        records: list[dict] = []
        expected = snap_offset
        for offset, batch in batches:
            end = offset + len(batch)
            if end <= snap_offset:
                continue  # already in the snapshot (crash between snapshot and compaction)
            if offset != expected:
                raise JournalCorruptError(
                    f"{self.log_path}: records {expected}..{offset - 1} are missing (the log "
                    f"jumps from offset {expected} to {offset}).")
            records.extend(batch)
            expected = end
        self._next_offset = expected
        self._since_snapshot = len(records)
        created = not self.log_path.exists()
        self._log = open(self.log_path, "ab", buffering=0)
        if created:   # its name on disk before a record in it is answered (a power loss keeps it)
            _fsync_dir(self.directory)
        return state, records

    def _read_snapshot(self) -> tuple[dict | None, int]:
        try:
            raw = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None, 0
        try:
            doc = json.loads(raw)
            state, offset, crc = doc["state"], doc["offset"], doc["crc"]
            if doc.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"unknown snapshot format {doc.get('format')!r}")
            if not isinstance(offset, int) or offset < 0 or not isinstance(state, dict):
                raise ValueError("bad offset or state")
        except (ValueError, KeyError, TypeError) as e:
            raise JournalCorruptError(f"{self.snapshot_path} is corrupt ({e}).") from None
        if zlib.crc32(_dumps(state)) != crc:
            raise JournalCorruptError(f"{self.snapshot_path} is corrupt (checksum mismatch).")
        return state, offset

    def _read_log(self) -> list[tuple[int, list[dict]]]:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return []
        batches: list[tuple[int, list[dict]]] = []
        pos, first_bad = 0, None
        while pos < len(data):
            nl = data.find(b"\n", pos)
            end = len(data) if nl == -1 else nl + 1
            decoded = _decode_line(data[pos:nl]) if nl != -1 else None
            if decoded is None:
                if first_bad is None:
                    first_bad = pos
            elif first_bad is not None:
                raise JournalCorruptError(
                    f"{self.log_path} is corrupt at byte {first_bad}, and valid records follow "
                    "it, so it is not a torn write; restore or wipe the coordinator journal.")
            else:
                batches.append(decoded)
            pos = end
        if first_bad is not None:
            with open(self.log_path, "r+b") as f:
                f.truncate(first_bad)
                f.flush()
                os.fsync(f.fileno())
            self._on_event("repair", {"service": "coordinator", "bytes": len(data) - first_bad,
                                      "path": str(self.log_path)})
        return batches

    # ----------------------------------------------------------------- write
    def append(self, records: Iterable[dict]) -> int:
        """Durably append one batch (all or nothing on replay); return its first offset."""
        if self._log is None:
            raise RuntimeError("call load() before append()")
        records = list(records)
        if not records:
            return self._next_offset
        offset = self._next_offset
        if self._clean_end is not None:
            # the bytes a failed append left: cut now, or this batch is refused too. Written after
            # them, it would have been answered NONE and then read back as one torn line with
            # them (cut at the next start) or as damage in the middle (a quarantined journal)
            self._log.truncate(self._clean_end)
            os.fsync(self._log.fileno())
            self._clean_end = None
        end = self._log.seek(0, os.SEEK_END)
        try:
            data = memoryview(encode_line(offset, records))
            done = 0
            while done < len(data):   # unbuffered: nothing is left behind to be written later
                done += self._log.write(data[done:])
            os.fsync(self._log.fileno())
        except OSError:
            # a full or failing disk: the batch is not in the journal, not even in part
            try:
                self._log.truncate(end)
                os.fsync(self._log.fileno())
            except OSError:
                self._clean_end = end   # cut before the next append (or by the repair at the next start)
            raise
        self._next_offset += len(records)
        self._since_snapshot += len(records)
        return offset

    def write_snapshot(self, state: dict, offset: int, *, patient: bool = True) -> None:
        """Atomically persist `state` (covering every record before `offset`, which must be
        the next offset), then empty the log. patient=False: a snapshot another program holds
        (Windows) is tried once, not for about 3 s (the caller tries again later)."""
        if self._log is None:
            raise RuntimeError("call load() before write_snapshot()")
        if offset != self._next_offset:
            raise ValueError(f"snapshot at {offset} but the journal is at {self._next_offset}")
        doc = {"format": SNAPSHOT_FORMAT, "offset": offset, "crc": zlib.crc32(_dumps(state)),
               "state": state}
        tmp = self.snapshot_path.with_name(SNAPSHOT_NAME + ".tmp")
        with open(tmp, "wb") as f:
            f.write(_dumps(doc))
            f.flush()
            os.fsync(f.fileno())
        _retry_permission(lambda: os.replace(tmp, self.snapshot_path), attempts=20 if patient else 1)
        _fsync_dir(self.directory)
        self._log.truncate(0)
        self._log.flush()
        os.fsync(self._log.fileno())
        self._since_snapshot = 0

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self._unlock()

    def __enter__(self) -> MetadataJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
