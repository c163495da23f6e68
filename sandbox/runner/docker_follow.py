"""Following a container's log for the events status shows (repairs, expired offsets, refused
logins), as native mode reads them from the log file. The engine's `since` is whole seconds in its
own clock, so each read starts a second before the newest line read and skips lines read already."""

from __future__ import annotations

import logging
from typing import Any, Callable

from sandbox.runner.docker_plan import docker_time
from sandbox.runner.logscan import GROUP_EVENTS, describe_event, parse_events

log = logging.getLogger("sandbox.runner")


def time_key(ts: str) -> tuple:
    """An engine log timestamp (RFC 3339, nanoseconds with trailing zeros cut) as a sortable key."""
    whole, _, fraction = ts.rstrip("Z").partition(".")
    return (whole, fraction.ljust(9, "0")[:9])


class LogFollower:
    """Where one container's log was read up to."""

    def __init__(self) -> None:
        self.at = 0.0             # (the watcher's clock) when the log was last read
        self.key: tuple = ()      # the engine's time of the newest line read (time_key)
        self.same: set[str] = set()   # the lines read with that very time
        self.since: float | None = None   # that time in seconds (the engine's clock)

    def restart(self, since: float | None) -> None:
        """A new start of the container: its log is read from `since` (the start's wall time)."""
        self.key, self.same, self.since = (), set(), since

    def next_since(self) -> float | None:
        return (self.since - 1) if self.since is not None else None

    def new_events(self, read: Callable[..., list[str]], service: str, since: float | None,
                   now: float) -> list[tuple[str, dict, float | None]]:
        """The supervised events of the log lines not read before, each with the engine time of
        its line in seconds; read(service, since=, timestamps=True) is the engine's log read. A
        failed read is tried again next time from the same line."""
        self.at = now
        try:
            got = read(service, since=since, timestamps=True)
        except Exception as e:   # noqa: BLE001 - the engine or the container is going away: next time
            log.info("could not read %s's log for events: %s", service, e)
            return []
        out = []
        for line in got:
            ts, _, text = line.partition(" ")
            key = time_key(ts)
            if key < self.key or (key == self.key and text in self.same):
                continue
            if key > self.key:
                self.key, self.same = key, set()
                self.since = docker_time(ts) or self.since
            self.same.add(text)
            out += [(kind, detail, self.since) for kind, detail in parse_events([text])]
        return out


def followed_event(kind: str, detail: dict) -> tuple[str, dict[str, Any]]:
    """The sentence and fields of a followed group or login event."""
    if kind in GROUP_EVENTS:
        return describe_event(kind, detail), {"group": detail.get("group")}
    return describe_event(kind, detail), {"listener": detail.get("listener")}
