"""Shared helpers for the journal tests."""
from __future__ import annotations

from sandbox.log import build_batch, iter_records


def batch(n: int = 1, *, tag: str = "r", ts: int = 1_000, **kw) -> bytes:
    return build_batch([(f"{tag}{i}".encode(), f"value-{tag}-{i}".encode()) for i in range(n)], timestamp_ms=ts, **kw)


def offsets(data: bytes) -> list[int]:
    return [r[0] for r in iter_records(data)]


def values(data: bytes) -> list[bytes]:
    return [r[3] for r in iter_records(data)]


class Clock:
    """Injectable clock in seconds."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.t * 1000)

    def advance_ms(self, ms: int) -> None:
        self.t += ms / 1000
