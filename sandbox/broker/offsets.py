"""Durable committed consumer-group offsets: an append-only, CRC32-checked journal
(`offsets.journal`) replayed at open, with tombstones and atomic, Windows-safe compaction."""
from __future__ import annotations

import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

JOURNAL = "offsets.journal"
_HEADER = struct.Struct(">II")  # payload length, crc32(payload); payload = compact JSON object
_MAX_RECORD = 256 * 1024 * 1024

# topic, partition, offset, leader_epoch, metadata
Entry = tuple[str, int, int, int, str]
EventHook = Callable[[str, dict[str, Any]], None]


class CommittedOffset(NamedTuple):
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int = -1   # ms since the epoch; offsets.retention.minutes counts from it


class OffsetStore:
    """Committed offsets per group, durable once `commit` returns (one write + fsync per call)."""

    def __init__(self, directory: Path | str, *, fsync: bool = True, on_event: EventHook | None = None,
                 compact_min_entries: int = 1000) -> None:
        self.directory = Path(directory)
        self.path = self.directory / JOURNAL
        self._tmp = self.directory / (JOURNAL + ".tmp")
        self._fsync = fsync
        self._on_event = on_event
        self._compact_min = compact_min_entries
        self._offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        self._file_entries = 0  # entries + tombstones currently in the journal file
        self._size = 0
        self._fh: Any = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.load()

    # ------------------------------------------------------------------ reading
    def get(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        return self._offsets.get(group, {}).get((topic, partition))

    def group_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return dict(self._offsets.get(group, {}))

    def groups(self) -> list[str]:
        return list(self._offsets)

    @property
    def live_entries(self) -> int:
        return sum(len(v) for v in self._offsets.values())

    @property
    def file_entries(self) -> int:
        return self._file_entries

    # ------------------------------------------------------------------ writing
    def commit(self, group: str, entries: Iterable[Entry]) -> None:
        """Durably record `entries` for `group` (one record, one write, one fsync)."""
        rows = [[str(t), int(p), int(o), int(e), "" if m is None else str(m)] for t, p, o, e, m in entries]
        if not rows:
            return
        self._append({"op": "commit", "group": group, "entries": rows}, len(rows))
        self._apply_commit(group, rows)
        self._maybe_compact()

    def delete_group(self, group: str) -> bool:
        """Forget every offset of `group`; returns whether it had any."""
        if group not in self._offsets:
            return False
        self._append({"op": "delete_group", "group": group}, 1)
        del self._offsets[group]
        self._maybe_compact()
        return True

    def delete_topic(self, topic: str) -> int:
        """Forget `topic`'s offsets in every group; returns how many entries went."""
        n = sum(1 for offs in self._offsets.values() for (t, _p) in offs if t == topic)
        if n:
            self._append({"op": "delete_topic", "topic": topic}, 1)
            self._apply_delete_topic(topic)
            self._maybe_compact()
        return n

    # ------------------------------------------------------------------ journal
    def load(self) -> None:
        """(Re)read the journal; a torn or corrupt tail is truncated and reported as a "repair" event."""
        self._close_handle()
        if self._tmp.exists():  # a compaction that died before its os.replace
            _retry(self._tmp.unlink)
        self._offsets = {}
        self._file_entries = 0
        data = self.path.read_bytes() if self.path.exists() else b""
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            if length > _MAX_RECORD or end > len(data):
                break
            payload = data[pos + _HEADER.size:end]
            if zlib.crc32(payload) != crc:
                break
            try:
                self._file_entries += self._apply(json.loads(payload))
            except (ValueError, KeyError, TypeError):
                break
            pos = end
        if pos < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(pos)
                fh.flush()
                os.fsync(fh.fileno())
            self._emit("repair", {"bytes": len(data) - pos, "file": str(self.path)})
        self._size = pos
        self._fh = open(self.path, "ab", buffering=0)

    def compact(self) -> None:
        """Rewrite the journal with only the live set: tmp file, fsync, close, os.replace (retried)."""
        before = self._file_entries
        with open(self._tmp, "wb") as fh:
            size = 0
            for group, offs in self._offsets.items():
                rows = [[t, p, c.offset, c.leader_epoch, c.metadata] for (t, p), c in offs.items()]
                size += _write_all(fh, _encode({"op": "commit", "group": group, "entries": rows}))
            fh.flush()
            os.fsync(fh.fileno())
        self._close_handle()  # Windows: no open handle on the file being replaced
        try:
            _retry(lambda: os.replace(self._tmp, self.path))
        except OSError as exc:
            self._fh = open(self.path, "ab", buffering=0)
            try:
                _retry(self._tmp.unlink)
            except OSError:
                pass
            self._emit("compact_failed", {"file": str(self.path), "error": str(exc)})
            return
        _fsync_dir(self.directory)
        self._fh = open(self.path, "ab", buffering=0)
        self._size = size
        self._file_entries = self.live_entries
        self._emit("compact", {"file": str(self.path), "before": before, "after": self._file_entries})

    def close(self) -> None:
        self._close_handle()

    def __enter__(self) -> OffsetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _append(self, record: dict[str, Any], entries: int) -> None:
        if self._fh is None:
            raise ValueError("OffsetStore is closed")
        data = _encode(record)
        try:
            _write_all(self._fh, data)
            if self._fsync:
                os.fsync(self._fh.fileno())
        except BaseException:
            try:  # never leave a half record that would hide later good ones
                self._fh.truncate(self._size)
            except OSError:
                pass
            raise
        self._size += len(data)
        self._file_entries += entries

    def _maybe_compact(self) -> None:
        if self._file_entries > max(self._compact_min, 10 * self.live_entries):
            self.compact()

    def _apply(self, rec: dict[str, Any]) -> int:
        op = rec["op"]
        if op == "commit":
            self._apply_commit(rec["group"], rec["entries"])
            return len(rec["entries"])
        if op == "delete_group":
            self._offsets.pop(rec["group"], None)
            return 1
        if op == "delete_topic":
            self._apply_delete_topic(rec["topic"])
            return 1
        raise ValueError(f"unknown op {op!r}")

    def _apply_commit(self, group: str, rows: list[list[Any]]) -> None:
        offs = self._offsets.setdefault(group, {})
        for t, p, o, e, m in rows:
            offs[(t, int(p))] = CommittedOffset(int(o), int(e), m)

    def _apply_delete_topic(self, topic: str) -> None:
        for group in list(self._offsets):
            offs = self._offsets[group]
            for key in [k for k in offs if k[0] == topic]:
                del offs[key]
            if not offs:
                del self._offsets[group]

    def _close_handle(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _emit(self, kind: str, info: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)


def _encode(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _write_all(fh: Any, data: bytes) -> int:
    view = memoryview(data)
    while view:
        n = fh.write(view)
        view = view[n:] if n is not None else view[len(view):]
    return len(data)


def _retry(fn: Callable[[], object], attempts: int = 8, delay: float = 0.01) -> None:
    """Run fn, retrying PermissionError with backoff (Windows: a scanner or reader holds the file)."""
    for i in range(attempts):
        try:
            fn()
            return
        except PermissionError:
            if i == attempts - 1:
                raise
            time.sleep(delay * (2 ** i))


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
