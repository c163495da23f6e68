"""Sans-io framing: turns a byte stream into Kafka frames (int32 size + body) and back.

No sockets here: the caller feeds bytes it read and writes the bytes it is given.
"""

from __future__ import annotations

import struct

DEFAULT_MAX_FRAME = 100 * 1024 * 1024  # socket.request.max.bytes

_SIZE = struct.Struct(">i")


class FrameError(Exception):
    """The stream is not valid Kafka framing; the connection must be closed."""


class FrameBuffer:
    """Accumulates bytes and yields complete frame bodies (without the size prefix)."""

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            size = frame_size(buf[pos:pos + 4], self.max_frame)
            if n - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet part of a complete frame."""
        return len(self._buf)

    def needed(self) -> int:
        """How many more bytes the current partial frame needs (0 if unknown yet)."""
        if len(self._buf) < 4:
            return 0
        (size,) = _SIZE.unpack_from(self._buf, 0)
        return max(0, size + 4 - len(self._buf))


def frame_size(prefix, max_frame: int = DEFAULT_MAX_FRAME) -> int:
    """The body size announced by a frame's 4-byte size prefix; FrameError if out of range."""
    (size,) = _SIZE.unpack_from(prefix, 0)
    if size < 0 or size > max_frame:
        raise FrameError(f"frame size {size} is outside 0..{max_frame} (socket.request.max.bytes)")
    return size


def frame(body: bytes) -> bytes:
    """Prefix a body with its int32 size."""
    return _SIZE.pack(len(body)) + body
