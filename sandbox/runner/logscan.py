"""Reading a service's log file: the last lines (for crash events) and the EVENT lines the
supervisor acts on (journal repairs, stale locks, config and storage errors), in the one format
sandbox.lifecycle writes."""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.lifecycle import parse_event_line

#: the EVENT kinds the supervisor reads from a service's log
SUPERVISED_EVENTS = re.compile(r"repair|stale-lock[\w-]*|config-error|storage-error|storage-ok|"
                               r"stray-partition-deleted|stray-partition-set-aside|topic-restored|offsets-expired|"
                               r"sasl-login-failed|authorization-failed")
#: of those, the ones shown in status under their own kind (a broker's folders matched with the metadata)
FOLDER_EVENTS = ("stray-partition-deleted", "stray-partition-set-aside", "topic-restored")
#: and a group's committed offsets expired (offsets.retention.minutes): why a consumer started over
GROUP_EVENTS = ("offsets-expired",)
#: and a client's SASL login refused, or a request the ACLs refused: why an application cannot connect
#: or is refused a topic, group or transactional id
LOGIN_EVENTS = ("sasl-login-failed", "authorization-failed")
_MAX_SCAN = 4 << 20  # never read more than this much of a log in one go


def log_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            end = f.tell()
            if offset > end:  # the log was truncated or rotated: start over
                offset = 0
            offset = max(offset, end - _MAX_SCAN)
            f.seek(offset)
            return f.read(end - offset), offset
    except OSError:
        return b"", offset


def mentions(path: Path, text: str, since: int = 0) -> bool:
    """Whether the log holds `text` at or after byte `since` (in its last _MAX_SCAN bytes). True
    when that cannot be told (no log at all, or one cut shorter since): nothing is concluded."""
    size = log_size(path)
    if size == 0 or size < since:
        return True
    data, _ = _read_from(path, since)
    return text.encode() in data


def tail_lines(path: Path, n: int = 20, since: int = 0) -> list[str]:
    """The last `n` lines written to the log at or after byte `since`."""
    data, _ = _read_from(path, since)
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [ln.rstrip() for ln in lines[-n:]]


def scan_events(path: Path, offset: int) -> tuple[list[tuple[str, dict]], int]:
    """Supervised events in complete lines from byte `offset`; returns them and the offset to resume from."""
    data, start = _read_from(path, offset)
    cut = data.rfind(b"\n")
    if cut < 0:
        return [], start
    return parse_events(data[:cut].decode("utf-8", errors="replace").split("\n")), start + cut + 1


def parse_events(lines) -> list[tuple[str, dict]]:
    """(kind, detail) of every EVENT line among `lines` whose kind is in SUPERVISED_EVENTS."""
    events = []
    for line in lines:
        event = parse_event_line(line)
        if event is not None and SUPERVISED_EVENTS.fullmatch(event[0]):
            events.append(event)
    return events


def describe_event(kind: str, detail: dict) -> str:
    """One sentence for a repair event, e.g. 'journal tail truncated: 38 bytes (…/00000.log)'."""
    if kind == "stray-partition-deleted":
        return f"{detail.get('topic')}-{detail.get('partition')} deleted from disk: {detail.get('why', 'a stray folder')}"
    if kind == "stray-partition-set-aside":
        return (f"{detail.get('topic')}-{detail.get('partition')} set aside as {detail.get('path')}: "
                f"{detail.get('why', 'a stray folder')}")
    if kind == "topic-restored":
        return (f"topic {detail.get('topic')} put back from its folders on disk "
                f"({detail.get('partitions', '?')} partition(s)): the metadata had lost it")
    if kind == "offsets-expired":
        return (f"group {detail.get('group')}: {detail.get('offsets', '?')} committed offset(s) expired "
                f"(offsets.retention.minutes={detail.get('retention_minutes', '?')})")
    if kind == "sasl-login-failed":
        mechanism = f" ({detail['mechanism']})" if detail.get("mechanism") else ""
        return f"SASL login from {detail.get('peer', '?')}{mechanism} refused: {detail.get('reason', '?')}"
    if kind == "authorization-failed":
        return (f"{detail.get('principal', '?')} (from {detail.get('host', '?')}) was refused "
                f"{detail.get('operation', '?')} on {str(detail.get('resource_type', '?')).lower().replace('_', ' ')} "
                f"{detail.get('resource', '?')}: {detail.get('why', '?')}")
    if kind == "repair":
        where = detail.get("segment") or detail.get("file") or detail.get("path")
        if "missing_from" in detail:
            part = f"{detail['topic']}-{detail['partition']}: " if "topic" in detail else ""
            return (f"{part}records {detail['missing_from']}-{detail['missing_to']} are not in the journal, "
                    f"though its {detail.get('checkpoint', 'high watermark')} checkpoint says every replica had "
                    f"them: lost from disk (unflushed at a power loss, or a file shortened or removed outside "
                    f"the broker), or cut just before a crash that came before the next checkpoint (a follower "
                    f"truncated to its leader's log); a follower fetches what its leader has, a leader or "
                    f"single replica may have lost them ({where})")
        if "flushed_to" in detail:
            part = f"{detail['topic']}-{detail['partition']}: " if "topic" in detail else ""
            return (f"{part}journal damaged below its flushed point: records from offset {detail.get('offset')} "
                    f"cut ({detail.get('bytes', '?')} bytes), though offsets up to {detail['flushed_to'] - 1} had been "
                    f"written to disk: damage at rest, not a torn write; acknowledged records are lost unless "
                    f"a replica holds them ({where})")
        text = f"journal tail truncated: {detail.get('bytes', '?')} bytes"
        return f"{text} ({where})" if where else text
    pid = detail.get("pid")
    where = detail.get("path")
    text = "stale lock removed" + (f" (left by pid {pid})" if pid is not None else "")
    return f"{text}: {where}" if where else text
