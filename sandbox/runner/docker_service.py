"""The Docker-mode watcher's view of its engine (the calls it makes: runner/docker.py's DockerStack
answers them, tests a fake) and what it keeps of each container between passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sandbox.runner.docker_follow import LogFollower
from sandbox.runner.policy import RecoveryPolicy, RestartWindow
from sandbox.runner.service import OwesRestore


class Engine(Protocol):
    """What the watcher needs from docker.DockerStack (a fake in unit tests)."""

    plans: dict

    def inspect(self, service: str): ...
    def events(self, since: float, until: float) -> list[dict]: ...
    def logs(self, service: str, since: float | None = None, tail: int | str = "all") -> list[str]: ...
    def measure(self, service: str) -> dict: ...
    def start(self, service: str) -> None: ...
    def restart(self, service: str) -> None: ...
    def stop(self, service: str) -> None: ...
    def kill(self, service: str) -> None: ...
    def pause(self, service: str) -> None: ...
    def unpause(self, service: str) -> None: ...
    def quarantine(self, service: str, wall: float) -> tuple[str | None, str]: ...
    def prune_quarantines(self, service: str, keep: int) -> list[str]: ...


class WatchedContainer(OwesRestore):
    """What the Docker-mode watcher keeps of one service's container between its passes."""

    def __init__(self, name: str, role: str, port: int, container: str, policy: RecoveryPolicy,
                 owed: Path | None = None) -> None:
        self.name, self.role, self.port, self.container = name, role, port, container
        self.owe_from(owed)   # the owed-restore marker, beside the state file (a killed watcher's restore)
        self.state = "starting"
        self.healthy = False
        self.restarts = 0
        self.last_exit_code: int | None = None
        self.started_wall: float | None = None
        self.latency_ms: float | None = None
        self.volume: str | None = None
        self.window = RestartWindow(policy.restart_window_s, policy.max_restarts)
        self.ever_started = False
        self.ours_until_ns = 0          # die/start events up to this time were caused by us
        self.wanted = True
        self.exited_seen = 0            # consecutive passes that found it exited with no restart coming
        self.unhealthy_since: float | None = None
        self.repair_attempted = self.looping = self.fresh_journal = False
        self.recreate_failed_reported = False
        self.scanned_start: str | None = None
        self.follow = LogFollower()       # its log, read for the events status shows
        self.figures: dict[str, Any] = {}
        self.host_pid: int | None = None   # the container's main process, on a Linux engine's kernel
        self.measured_at = 0.0
        self.problem: str | None = None    # one sentence status shows (a configuration error)
        self.paused_until: float | None = None   # frozen on request (sandbox pause) until then
        self.exit_counted = False          # its last exit was counted as a restart (the crash path)
        self.stopping_by_hand = False      # a SIGTERM we did not send (`docker stop`): the die is no crash
        self.oom = False                   # an oom event came before its die
        self.frozen_until = float("-inf")  # (clock) when it was last seen paused or resumed
