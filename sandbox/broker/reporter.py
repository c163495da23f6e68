"""Rate-limited reports: what a client retries every few hundred ms is told in `sandbox status`
once every few seconds, not once per attempt."""

from __future__ import annotations

from typing import Any, Callable


class Reporter:
    """At most one report per key every `every_s` (a client retries its login every few hundred ms)."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] | None = None) -> None:
        import time
        self.every_s, self.clock, self._last = every_s, clock or time.monotonic, {}

    def due(self, key: Any) -> bool:
        now = self.clock()
        if now - self._last.get(key, float("-inf")) < self.every_s:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True
