"""Kafka's record-batch compression codecs (gzip, snappy with or without Java's xerial framing,
lz4, zstd) through cramjam, expanded: for the broker (ListOffsets by time, the log cleaner) and
the CLI's consumer alike. Pure functions, no sandbox imports, so both sides of the import rules
can use them."""

from __future__ import annotations

import struct

_XERIAL = b"\x82SNAPPY\x00"


def _snappy(data: bytes) -> bytes:
    import cramjam

    if data[:8] == _XERIAL:  # Java clients: xerial framing, then length-prefixed raw blocks
        out = bytearray()
        pos = 16
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4
            out += bytes(cramjam.snappy.decompress_raw(data[pos:pos + n]))
            pos += n
        return bytes(out)
    return bytes(cramjam.snappy.decompress_raw(data))


class UnreadableCompression(ValueError):
    """A payload its codec cannot read (cramjam's DecompressionError is no ValueError), or a codec
    Kafka does not have."""


def decompress(codec: int, payload: bytes) -> bytes:
    """The records of a batch compressed with Kafka codec `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd);
    UnreadableCompression when they cannot be read."""
    import cramjam

    try:
        if codec == 1:
            return bytes(cramjam.gzip.decompress(payload))
        if codec == 2:
            return _snappy(payload)
        if codec == 3:
            return bytes(cramjam.lz4.decompress(payload))
        if codec == 4:
            return bytes(cramjam.zstd.decompress(payload))
    except cramjam.DecompressionError as e:
        raise UnreadableCompression(f"codec {codec}: {e}") from None
    raise UnreadableCompression(f"unknown compression codec {codec} (Kafka has 1 gzip, 2 snappy, 3 lz4, 4 zstd)")
