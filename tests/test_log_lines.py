"""A service's log on a full disk: the supervisor reads EVENT lines from it (runner/logscan.py),
and a write that failed part way must not glue the next record to the torn head of a line, nor
hide an EVENT written once there was space again ("storage-ok", which clears status's "disk full")."""

from __future__ import annotations

import errno
import io
import logging

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
