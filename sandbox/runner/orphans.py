"""Finding a sandbox's service processes without its supervisor: one pid file per service (pid,
process create time, command line) checked with psutil, so a recycled pid is never taken for
ours; a Handle over such a process (for adoption) and stopping them (stop file, terminate, kill)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import psutil

from sandbox.runner.process import ServiceSpec


def pid_file(spec: ServiceSpec) -> Path:
    """Beside the journals, not in one: a journal moved to quarantine must not take it along."""
    return spec.data_dir.parent / "run" / f"{spec.name}.json"


def write_service_pid(spec: ServiceSpec, pid: int) -> None:
    """The pid and the command line that tells it apart from a recycled pid (_from_pid_file)."""
    path = pid_file(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": pid, "argv": spec.argv}), encoding="utf-8")
    os.replace(tmp, path)


def remove_service_pid(spec: ServiceSpec, pid: int | None = None) -> None:
    """Remove the pid file (only if it still names `pid`, when given)."""
    path = pid_file(spec)
    if pid is not None:
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") != pid:
                return
        except (OSError, ValueError):
            return
    try:
        path.unlink()
    except OSError:
        pass


def _same_command(cmdline: list[str], argv: list[str]) -> bool:
    """The interpreter path may be spelled differently (a venv link); the arguments may not."""
    return len(cmdline) == len(argv) and cmdline[1:] == argv[1:]


def _from_pid_file(spec: ServiceSpec) -> psutil.Process | None:
    try:
        data = json.loads(pid_file(spec).read_text(encoding="utf-8"))
        proc = psutil.Process(int(data["pid"]))
        # by the command line alone: a create time moves with the wall clock (detach.same_process)
        if _same_command(proc.cmdline(), spec.argv) and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    return None


def live_services(specs: Iterable[ServiceSpec]) -> dict[str, psutil.Process]:
    """Each service's process if it runs: the pid file's process (same create time and command
    line), else any process running exactly the service's command line (one scan for all)."""
    specs = list(specs)
    found = {}
    for spec in specs:
        proc = _from_pid_file(spec)
        if proc is not None:
            found[spec.name] = proc
    missing = [s for s in specs if s.name not in found]
    if missing:
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmd = proc.info.get("cmdline") or []
                spec = next((s for s in missing if _same_command(cmd, s.argv)), None)
                if spec is not None and spec.name not in found and proc.status() != psutil.STATUS_ZOMBIE:
                    found[spec.name] = proc
            except psutil.Error:
                continue
    return found


def _recorded_spec(name: str, argv: list[str], run_dir: Path) -> ServiceSpec | None:
    """The spec a pid file's command line was started with (role, port and data folder read back
    from its arguments), or None if it is not one of ours."""
    try:
        role = argv[3]
        port = int(argv[argv.index("--port") + 1])
        data_dir = Path(argv[argv.index("--data-dir") + 1])
        return ServiceSpec(name, role, argv, port, data_dir, run_dir.parent / "logs" / f"{name}.log")
    except (IndexError, ValueError):
        return None


def stale_services(specs: Iterable[ServiceSpec]) -> dict[str, tuple[psutil.Process, ServiceSpec]]:
    """This sandbox's service processes started with a command line today's sandbox.toml no longer
    gives: its ports, brokers or defaults were edited while no supervisor ran (a killed one left
    them). Found by the pid files in the run folder, each process running exactly the command line
    its file recorded; each with the spec it was started with, to stop it by. Before, `down` looked
    for today's command lines only and left them running, holding their ports."""
    specs = list(specs)
    if not specs:
        return {}
    today = {s.name: s.argv for s in specs}
    run_dir = pid_file(specs[0]).parent
    found: dict[str, tuple[psutil.Process, ServiceSpec]] = {}
    try:
        files = sorted(run_dir.glob("*.json"))
    except OSError:
        return {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            argv = [str(a) for a in data["argv"]]
            if path.stem in today and _same_command(argv, today[path.stem]):
                continue   # today's command line (another spelling of the interpreter): live_services finds it
            spec = _recorded_spec(path.stem, argv, run_dir)
            proc = psutil.Process(int(data["pid"]))
            if spec is not None and _same_command(proc.cmdline(), argv) and proc.status() != psutil.STATUS_ZOMBIE:
                found[path.stem] = (proc, spec)
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            continue
    return found


def left_running(specs: Iterable[ServiceSpec]) -> dict[str, tuple[psutil.Process, ServiceSpec]]:
    """Every service process of this sandbox that runs: today's (live_services) and those started
    with an older sandbox.toml (stale_services), each with the spec to stop it by."""
    specs = list(specs)
    by_name = {s.name: s for s in specs}
    found = {n: (p, by_name[n]) for n, p in live_services(specs).items()}
    for name, (proc, spec) in stale_services(specs).items():
        if name not in found and all(p.pid != proc.pid for p, _ in found.values()):
            found[name] = (proc, spec)
    return found


def live_process(spec: ServiceSpec) -> psutil.Process | None:
    return live_services([spec]).get(spec.name)


class AdoptedHandle:
    """A Handle over a service process this supervisor did not start (its exit code is unknown)."""

    UNKNOWN_EXIT = -1

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        try:
            self.started_wall: float | None = proc.create_time()   # seconds since the epoch
        except psutil.Error:
            self.started_wall = None

    def poll(self) -> int | None:
        try:
            if self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return self.UNKNOWN_EXIT

    def terminate(self) -> None:
        try:
            self.proc.terminate()
            if self.proc.status() == psutil.STATUS_STOPPED:
                self.proc.resume()   # a paused process handles the terminate only once resumed
        except psutil.Error:
            pass

    def kill(self) -> None:
        try:
            self.proc.kill()
        except psutil.Error:
            pass

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            if self.proc.status() == psutil.STATUS_ZOMBIE:
                return self.UNKNOWN_EXIT   # dead; its parent (gone) will never reap it
            self.proc.wait(timeout)
        except psutil.TimeoutExpired:
            return None if self.poll() is None else self.UNKNOWN_EXIT
        except psutil.Error:
            pass
        return self.UNKNOWN_EXIT


def stop_processes(found: dict[str, tuple[psutil.Process, ServiceSpec]], grace: float = 10.0) -> list[str]:
    """Stop service processes nobody supervises: stop file, terminate after grace/2, kill after
    grace. Brokers before the coordinator. Returns the names stopped."""
    order = sorted(found, key=lambda n: 1 if found[n][1].role == "coordinator" else 0)
    for group in ([n for n in order if found[n][1].role != "coordinator"],
                  [n for n in order if found[n][1].role == "coordinator"]):
        for name in group:
            try:
                if found[name][0].status() == psutil.STATUS_STOPPED:
                    found[name][0].resume()   # a paused process never sees its stop file
                found[name][1].stop_file.write_text("stop", encoding="utf-8")
            except (OSError, psutil.Error):
                pass
        for step, budget in (("terminate", grace / 2), ("kill", grace / 2), (None, 5.0)):
            procs = [found[n][0] for n in group]
            _, alive = psutil.wait_procs(procs, timeout=budget)
            if not alive or step is None:
                break
            for p in alive:
                try:
                    if step == "kill":
                        p.kill()
                    else:
                        p.terminate()
                except psutil.Error:
                    pass
        for name in group:
            spec = found[name][1]
            remove_service_pid(spec)
            try:
                spec.stop_file.unlink()
            except OSError:
                pass
    return order


def describe(found: dict[str, psutil.Process]) -> str:
    return ", ".join(f"{n} (pid {p.pid})" for n, p in sorted(found.items()))


def note_pid(spec: ServiceSpec, pid: int | None) -> None:
    """The service's pid file (what `down` and the next supervisor find it by). One that cannot
    be written (a file where `.sandbox/run` should be, a full disk) is logged, not raised: the
    service has started, and its start must still be recorded; `down` finds it by command line."""
    try:
        if pid is None:
            remove_service_pid(spec)
        else:
            write_service_pid(spec, pid)
    except OSError as e:
        import logging

        logging.getLogger("sandbox.runner").warning("%s: pid file not %s: %s", spec.name,
                                                    "removed" if pid is None else "written", e)
