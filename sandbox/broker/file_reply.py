"""Fetch replies that go out partly by sendfile: the reply as buffers and pinned file runs
(FileReply), built from a Fetch response's encoded parts (fetch_reply), and one direct sendfile
when nothing waits in the transport ahead of it (sendfile_now)."""

from __future__ import annotations

import asyncio
import os

from sandbox.protocol import join_parts

SENDFILE = hasattr(os, "sendfile")   # Linux, macOS: file slices go to the socket without a copy
SENDFILE_MIN_BYTES = 64 * 1024       # below this, one read into the reply is cheaper


class FileReply:
    """A Fetch reply as buffers and pinned file runs (fd, position, size), sent in order."""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items

    def close(self) -> None:
        for item in self.items:
            if isinstance(item, tuple):
                try:
                    os.close(item[0])
                except OSError:
                    pass
        self.items = []


def fetch_reply(parts: list):
    """The encoded Fetch parts as one buffer (records read straight into it), or, where the OS has
    sendfile and enough record bytes are fetched, a FileReply whose file runs are pinned now,
    before any await lets the log roll or retention delete a segment."""
    lazy = sum(len(p) for p in parts if hasattr(p, "pin"))
    if not SENDFILE or lazy < SENDFILE_MIN_BYTES:
        return join_parts(parts)
    items: list = []
    try:
        for p in parts:
            if hasattr(p, "pin"):
                items.extend(p.pin())
            elif len(p):
                items.append(p)
    except OSError:
        FileReply(items).close()
        return join_parts(parts)
    return FileReply(items)


def sendfile_now(transport, fd: int, pos: int, n: int) -> int:
    """As much of a file run as the socket takes at once when nothing waits in the transport
    ahead of it (most Fetch replies: no event-loop round trips); the caller sends the rest."""
    sent = 0
    if not transport.get_write_buffer_size():
        out = transport.get_extra_info("socket").fileno()
        try:
            while sent < n and (k := os.sendfile(out, fd, pos + sent, n - sent)):
                sent += k
        except (BlockingIOError, InterruptedError):
            pass
    return sent


def discard(item) -> None:
    """Release a queued request that will never be answered (the connection is gone)."""
    if asyncio.iscoroutine(item):
        item.close()
    elif isinstance(item, FileReply):
        item.close()
