"""Fakes for the supervisor's unit tests: a clock, a spawner whose handles are driven by the test, a probe."""

from __future__ import annotations

from pathlib import Path

from sandbox.runner.native import RecoveryPolicy, Supervisor
from sandbox.runner.probe import ProbeResult
from sandbox.runner.process import ServiceSpec


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class FakeHandle:
    """A process the test ends by setting `code`. Behaviour on stop: honours the stop file or not,
    exits on terminate or not; kill always ends it. Every call goes to the shared `calls` list."""

    def __init__(self, pid: int, spec: ServiceSpec, calls: list, *, honour_stop_file: bool = True,
                 exit_on_terminate: bool = True) -> None:
        self.pid = pid
        self.spec = spec
        self.calls = calls
        self.code: int | None = None
        self.honour_stop_file = honour_stop_file
        self.exit_on_terminate = exit_on_terminate
        self.terminated = self.killed = self.frozen = False

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.calls.append((self.spec.name, "terminate"))
        self.terminated = True
        if self.exit_on_terminate and self.code is None:
            self.code = -15

    def kill(self) -> None:
        self.calls.append((self.spec.name, "kill"))
        self.killed = True
        if self.code is None:
            self.code = -9

    def suspend(self) -> None:
        self.calls.append((self.spec.name, "suspend"))
        self.frozen = True

    def resume(self) -> None:
        self.calls.append((self.spec.name, "resume"))
        self.frozen = False

    def wait(self, timeout: float | None = None) -> int | None:
        self.calls.append((self.spec.name, "wait", timeout))
        stop = self.spec.stop_file
        if self.code is None and self.honour_stop_file and stop.exists():
            self.calls.append((self.spec.name, "saw stop file", stop.read_text()))
            stop.unlink()
            self.code = 0
        return self.code


class FakeSpawner:
    def __init__(self) -> None:
        self.calls: list = []
        self.spawned: list[FakeHandle] = []
        self.behaviour: dict[str, dict] = {}   # name -> FakeHandle keyword arguments
        self.log_on_start: dict[str, list[str]] = {}  # name -> lines the service writes when it starts
        self.fail: set[str] = set()

    def spawn(self, spec: ServiceSpec) -> FakeHandle:
        if spec.name in self.fail:
            raise FileNotFoundError(2, "No such file or directory", spec.argv[0])
        self.calls.append((spec.name, "spawn"))
        for line in self.log_on_start.get(spec.name, []):
            append_log(spec.log_path, line)
        h = FakeHandle(10000 + len(self.spawned), spec, self.calls, **self.behaviour.get(spec.name, {}))
        self.spawned.append(h)
        return h

    def handles(self, name: str) -> list[FakeHandle]:
        return [h for h in self.spawned if h.spec.name == name]

    def current(self, name: str) -> FakeHandle:
        return self.handles(name)[-1]


class FakeProbe:
    def __init__(self) -> None:
        self.ok: dict[str, bool] = {}
        self.calls: list[str] = []

    def __call__(self, spec: ServiceSpec) -> ProbeResult:
        self.calls.append(spec.name)
        if self.ok.get(spec.name, False):
            return ProbeResult(True, "api-versions", "ApiVersions ok in 0.5 ms", 0.5)
        return ProbeResult(False, "api-versions", f"127.0.0.1:{spec.port}: ConnectionRefusedError", None)


def append_log(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def spec(tmp: Path, name: str, role: str = "broker", port: int = 9092) -> ServiceSpec:
    return ServiceSpec(name=name, role=role, argv=["python", "-m", "sandbox", role], port=port,
                       data_dir=tmp / ".sandbox" / name, log_path=tmp / ".sandbox" / "logs" / f"{name}.log")


def kinds(events: list[dict], service: str | None = None) -> list[str]:
    return [e["kind"] for e in events if service is None or e["service"] == service]


def supervisor_over_a_journal(tmp_path: Path, policy=None, **extra):
    """A Supervisor of one broker whose journal holds one segment ('old batches'), on the fakes:
    (supervisor, clock, spawner, probe, spec)."""
    clock, spawner, probe = FakeClock(), FakeSpawner(), FakeProbe()
    s = spec(tmp_path, "broker-1")
    (s.data_dir / "orders-0").mkdir(parents=True)
    (s.data_dir / "orders-0" / "00000000000000000000.log").write_bytes(b"old batches")
    sup = Supervisor([s], policy or RecoveryPolicy(max_restarts=2, restart_window_s=60), spawner=spawner, clock=clock,
                     wall_clock=lambda: 1_795_000_000.0 + clock.t, probe=probe,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda s: None, **extra)
    return sup, clock, spawner, probe, s
