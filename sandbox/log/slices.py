"""LogSlices: what PartitionLog.read() answers, runs of whole batches in segment files not read
yet (len, readinto, tobytes, or pinned file handles for sendfile)."""
from __future__ import annotations

from .segment import Segment


class LogSlices:
    """Runs of whole batches in segment files, not yet read: len() is their total size and
    readinto(view) reads them straight into a caller's buffer. Valid until the log next changes."""

    __slots__ = ("slices", "_size")

    def __init__(self, slices: list[tuple[Segment, int, int]]) -> None:
        self.slices = slices
        self._size = sum(n for _s, _p, n in slices)

    def __len__(self) -> int:
        return self._size

    def readinto(self, view) -> int:
        view = memoryview(view).cast("B")
        pos = 0
        for seg, start, n in self.slices:
            seg.read_into(start, view[pos:pos + n])
            pos += n
        return pos

    def pin(self) -> list[tuple[int, int, int]]:
        """(fd, position, size) of each run, on duplicated handles of their own: they stay valid
        when the log rolls, retention deletes the segment or the log is closed (for sendfile).
        POSIX only; the caller closes them."""
        return [(seg.dup_fd(), start, n) for seg, start, n in self.slices]

    def tobytes(self) -> bytes:
        if not self._size:
            return b""
        if len(self.slices) == 1:
            seg, start, n = self.slices[0]
            return seg.read_exact(start, n)
        buf = bytearray(self._size)
        self.readinto(buf)
        return bytes(buf)
