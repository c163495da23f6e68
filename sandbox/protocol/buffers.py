"""Receive buffers kept for reuse. A frame of hundreds of KB (a follower's Fetch answer, a
producer's request) received into a fresh bytearray costs a page fault and the kernel's zeroing
per 4 KiB; received into a kept one, nothing. A kept buffer is handed out as a memoryview of the
frame's size, and handed out again only once no view of it is alive: a bytearray with views
cannot be resized, so the check is the bytearray's own, whatever holds the views."""

from __future__ import annotations

import ctypes
import sys

MIB = 1 << 20


def unexported(buf: bytearray) -> bool:
    """True if no view of `buf` is alive: shrinking it by one byte (given back at once, within
    its allocation) raises BufferError while one is."""
    try:
        buf.pop()
    except BufferError:
        return False
    buf.append(0)
    return True


class BufferPool:
    """Up to `count` kept buffers for frames of `min_size` to `max_size` bytes; a frame outside
    that range, or arriving while every kept buffer is in use, gets a bytearray of its own."""

    def __init__(self, count: int, min_size: int = 64 * 1024, max_size: int = 2 * MIB) -> None:
        self.count, self.min_size, self.max_size = count, min_size, max_size
        self._bufs: list[bytearray] = []
        self._taken = 0          # frames handed a kept buffer or offered one, ever
        self._taken_seen = 0     # ... at the last release_if_idle()

    def take(self, size: int) -> bytearray | memoryview:
        """A writable buffer of exactly `size` bytes (its contents undefined)."""
        if size < self.min_size or size > self.max_size:
            return bytearray(size)
        self._taken += 1
        bufs = self._bufs
        for buf in bufs:
            if len(buf) >= size and unexported(buf):
                return memoryview(buf)[:size]
        # a new one while there is room, else in place of a free one too small for this frame
        slot = len(bufs) if len(bufs) < self.count else next((i for i, b in enumerate(bufs) if unexported(b)), None)
        if slot is None:   # every kept buffer in use: this frame gets one of its own
            return bytearray(size)
        # rounded up to whole MiB: frames a little larger than the last fit too
        fresh = bytearray(min(-(-size // MIB) * MIB, self.max_size))
        bufs[slot:slot + 1] = [fresh]
        return memoryview(fresh)[:size]

    def sizes(self) -> list[int]:
        return [len(b) for b in self._bufs]

    def release_if_idle(self) -> int:
        """Called now and then (a broker: every 30 s): if no frame asked for a buffer since the
        last call, give back the kept buffers no view holds (the memory a load left behind, up to
        count x max_size, returns to the system; the next load keeps new ones). Bytes released."""
        if self._taken != self._taken_seen:
            self._taken_seen = self._taken
            return 0
        kept, freed = [], 0
        for b in self._bufs:
            if unexported(b):
                freed += len(b)
            else:
                kept.append(b)
        self._bufs = kept
        if freed:
            _trim_heap()
        return freed


def _trim_heap() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim). Once a large block was
    freed, glibc serves later ones of that size from its heap instead of their own mappings, and
    keeps what is freed there: without this the buffers' memory came back the first time only
    (8 kept buffers of 1.9 MB given back three times: RSS 55 -> 41, 55 -> 53, 55 -> 55 MiB; with
    it 55 -> 39, 41 and 39)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (musl has no malloc_trim)
        pass
