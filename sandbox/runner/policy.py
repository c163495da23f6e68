"""Recovery policy: what the supervisor does when a service crashes, loops or cannot repair its journal.

Pure values and arithmetic (backoff, crash-loop window); no processes, no files.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sandbox.config import ON_CORRUPT as ON_CORRUPT_JOURNAL
from sandbox.config import ON_CRASH

#: A service exits with this code when its journal cannot be repaired.
EXIT_UNREPAIRABLE = 4
#: A service exits with this code on a user error (bad option, port taken): wiping never helps.
EXIT_USAGE = 2


@dataclass(frozen=True)
class RecoveryPolicy:
    on_crash: str = "restart"
    on_corrupt_journal: str = "repair-then-wipe"
    max_restarts: int = 5
    restart_window_s: float = 60.0
    keep_quarantines: int = 3
    unhealthy_after_s: float = 10.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    grace_s: float = 10.0

    def __post_init__(self) -> None:
        if self.on_crash not in ON_CRASH:
            raise ValueError(f"on_crash must be one of {', '.join(ON_CRASH)}, not {self.on_crash!r}")
        if self.on_corrupt_journal not in ON_CORRUPT_JOURNAL:
            raise ValueError(f"on_corrupt_journal must be one of {', '.join(ON_CORRUPT_JOURNAL)}, "
                             f"not {self.on_corrupt_journal!r}")
        for name in ("max_restarts", "keep_quarantines"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        for name in ("restart_window_s", "unhealthy_after_s", "backoff_initial_s", "backoff_max_s", "grace_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")

    def backoff(self, attempt: int) -> float:
        """Delay before restart number `attempt` (1-based) of the current window: initial * 2^(n-1), capped."""
        if attempt <= 0:
            return 0.0
        return min(self.backoff_initial_s * (2 ** min(attempt - 1, 30)), self.backoff_max_s)


class RestartWindow:
    """Times of the exits within the last `window_s` seconds; more than `limit` of them is a crash loop."""

    def __init__(self, window_s: float, limit: int) -> None:
        self.window_s = window_s
        self.limit = limit
        self._times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def record(self, now: float) -> int:
        self._times.append(now)
        self._trim(now)
        return len(self._times)

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self._times)

    def looping(self, now: float) -> bool:
        return self.count(now) > self.limit

    def clear(self) -> None:
        self._times.clear()
