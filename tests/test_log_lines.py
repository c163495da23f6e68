"""A service's log on a full disk: the supervisor reads EVENT lines from it (runner/logscan.py),
and a write that failed part way must not glue the next record to the torn head of a line, nor
hide an EVENT written once there was space again ("storage-ok", which clears status's "disk full")."""

from __future__ import annotations

import errno
import io
import logging
import os

import pytest

from sandbox.lifecycle import WholeLines, event_line, parse_event_line


class FullDisk(io.StringIO):
    """A stream that takes `room` more characters, then fails (ENOSPC) until `room` is raised."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, s: str) -> int:
        if len(s) > self.room:
            taken = s[:self.room]
            super().write(taken)
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(s)
        return super().write(s)


def _logger(stream) -> logging.Logger:
    handler = WholeLines(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    lg = logging.getLogger(f"test-whole-lines-{id(stream)}")
    lg.handlers[:] = [handler]
    lg.propagate = False
    return lg


def test_a_record_after_a_failed_write_starts_on_a_line_of_its_own(capsys):
    stream = FullDisk(room=60)
    lg = _logger(stream)
    lg.warning("%s", event_line("authorization-failed", {"why": "an ACL denies it " * 4}))
    lg.warning("%s", event_line("storage-error", {"errno": 28}))   # nothing left: dropped
    stream.room = 10_000
    lg.warning("%s", event_line("storage-ok", {}))
    lg.warning("%s", event_line("repair", {"bytes": 3}))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("WARNING EVENT authorization-failed {") and len(lines[0]) == 60
    assert [parse_event_line(line) for line in lines[1:] if line] == [("storage-ok", {}), ("repair", {"bytes": 3})]
    assert capsys.readouterr().err == ""   # no "--- Logging error ---" traceback, which would go to the same disk


def test_the_event_glued_to_a_torn_line_is_read():
    torn = '2026-12-05 09:11:44,807 WARNING sandbox.broker: EVENT authorization-failed {"why": "DENY CREA'
    whole = '2026-12-05 09:11:48,708 WARNING sandbox.broker: EVENT storage-ok {}'
    assert parse_event_line(torn + whole) == ("storage-ok", {})
    assert parse_event_line("2026-12" + whole) == ("storage-ok", {})
    # a line of its own still reads as before, also when its detail mentions another EVENT
    line = 'x: ' + event_line("repair", {"message": 'saw EVENT other {"a": 1}'})
    assert parse_event_line(line) == ("repair", {"message": 'saw EVENT other {"a": 1}'})
    assert parse_event_line("x: EVENT repair {not json}") == ("repair", {"raw": "{not json}"})
    assert parse_event_line("x: EVENT repair [1]") is None
    assert parse_event_line("x: nothing here") is None
    assert parse_event_line(torn) is None


class ShortWrites(io.RawIOBase):
    """A log file on a disk with `room` bytes left, as write(2) meets it: a write larger than the
    room takes its head and says so by the count alone; with no room left, ENOSPC."""

    def __init__(self, room: int) -> None:
        self.data, self.room = bytearray(), room

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(len(b), self.room)
        self.data += bytes(b)[:n]
        self.room -= n
        return n


def test_a_line_cut_short_by_a_full_disk_on_an_unbuffered_stderr_is_said_again():
    """A service's stderr (PYTHONUNBUFFERED=1, as the supervisor starts it) is a write-through text
    stream straight over the file: it took the head of a storage-ok line, dropped the rest without
    a word, and the broker believed status had been told; status showed "disk full" for good."""
    from types import SimpleNamespace

    from sandbox.broker import storage
    from sandbox.runner.logscan import parse_events

    disk = ShortWrites(room=10**6)
    lg = logging.getLogger("sandbox.broker")   # the logger storage.py's EVENT lines go to
    saved = lg.handlers[:], lg.propagate, lg.level
    handler = WholeLines(io.TextIOWrapper(disk, encoding="utf-8", write_through=True))
    lg.handlers[:], lg.propagate = [handler], False
    lg.setLevel(logging.INFO)
    try:
        state = SimpleNamespace(storage_failing=False, storage_failures=0, storage_told=False, storage_failure=None)
        storage.failed(state, "/d", OSError(errno.ENOSPC, "No space left on device"))   # written whole
        disk.room = 10          # the last page's slack: an append fitted, the line that says so does not
        storage.recovered(state)
        assert state.storage_told is None   # not told: said again
        disk.room = 10**6       # space again
        lg.info("something else")
        storage._tell(state)    # what the broker's probe does every second
    finally:
        lg.handlers[:], lg.propagate = saved[0], saved[1]
        lg.setLevel(saved[2])
    events = [kind for kind, _ in parse_events(disk.data.decode().split("\n")) if kind.startswith("storage")]
    assert events == ["storage-error", "storage-ok"]


def test_a_real_unbuffered_stderr_whose_file_cannot_grow_counts_the_line_as_unwritten(tmp_path):
    """The same with a real process: its stderr a file that may not grow past a limit
    (RLIMIT_FSIZE), so write(2) is short, then refused."""
    import subprocess
    import sys
    resource = pytest.importorskip("resource")
    del resource
    script = r"""
import logging, resource, signal, sys
from sandbox.lifecycle import WholeLines, emit_event
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
lg = logging.getLogger("sandbox.t"); h = WholeLines(sys.stderr); lg.handlers[:] = [h]; lg.propagate = False
resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))
print(emit_event(lg, "storage-ok", {"pad": "x" * 60}), h.torn, file=sys.stdout)
"""
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as err:
        out = subprocess.run([sys.executable, "-c", script], stderr=err, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=60)
    assert out.returncode == 0
    assert out.stdout.split() == ["False", "True"]   # unwritten, and the next line starts afresh
    assert log_path.stat().st_size == 40
