"""`sandbox doctor`: checks the machine this folder's sandbox would run on, without starting or
creating anything: sandbox.toml, its ports, free disk, the data folder being writable, the Docker
engine (docker mode), the clock against the journals' file times, and the Python in use.

Every check is bounded in time: the only network traffic is binding 127.0.0.1 ports (through
`port_owner`) and the local Docker engine's socket, with short timeouts. One row per check; exit 0
when none failed (warnings allowed), 1 when one did, 2 when sandbox.toml is broken.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import ConfigError, SandboxConfig, load_config
from sandbox.runner import stack
from sandbox.runner.probe import port_bindable, port_owner

from .common import config_option, fail, json_option
from .render import format_columns

OK, WARN, FAIL = "ok", "warn", "fail"
DISK_FAIL_BYTES = 100 * 1000 * 1000
DISK_WARN_BYTES = 1000 * 1000 * 1000
CLOCK_SKEW_S = 60.0
CLOCK_MIN_YEAR = 2024
SCAN_MAX_ENTRIES = 5000
DOCKER_TIMEOUT_S = 5.0          # docker mode: the engine must answer
DOCKER_PEEK_TIMEOUT_S = 2.0     # native mode: only to say whether one answers


@dataclass
class Check:
    name: str
    result: str     # ok | warn | fail
    detail: str


@dataclass
class Context:
    """What the checks share: the config, whether this sandbox runs, what holds its ports."""

    cfg: SandboxConfig
    supervisor_pid: int | None
    own_ports: set[int]
    own_pids: set[int]
    containers_up: bool = False     # docker mode: this sandbox's containers run (with or without a supervisor)

    @property
    def running(self) -> bool:
        return bool(self.supervisor_pid) or self.containers_up


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


# ---- config ---------------------------------------------------------------------------------------

def load(config: Optional[Path]) -> Context:
    """This folder's config (what `sandbox up` would use; the running stack's when it runs).
    A broken sandbox.toml exits 2 with the one sentence every command gives."""
    cwd = Path.cwd()
    try:
        base = load_config(config, cwd=cwd)
    except ConfigError as e:
        fail(str(e))
        raise AssertionError from None
    try:
        live = stack.load_stack_config(config, cwd)   # + the overrides the running stack started with
    except ConfigError:
        live = base
    pid = stack.running_pid(live)
    cfg = live if pid else base
    own_ports: set[int] = set()
    own_pids: set[int] = set()
    if pid:
        own_pids.add(pid)
        own_ports.add(cfg.http_port)
        for s in (stack.read_status_file(cfg) or {}).get("services", []):
            if s.get("port"):
                own_ports.add(int(s["port"]))
            for key in ("pid", "host_pid"):
                if s.get(key):
                    own_pids.add(int(s[key]))
    return Context(cfg, pid, own_ports, own_pids)


def check_config(ctx: Context) -> Check:
    cfg = ctx.cfg
    where = (f"{cfg.path} parses" if cfg.path
             else f"no sandbox.toml in {cfg.root}, so the defaults apply (`sandbox init` writes one)")
    brokers = f"{cfg.brokers} broker{'' if cfg.brokers == 1 else 's'}"
    running = f"running (supervisor pid {ctx.supervisor_pid})" if ctx.supervisor_pid else "not running"
    return Check("config", OK, f"{where}; sandbox {cfg.name}, {cfg.mode} mode, {brokers}, "
                               f"data in {cfg.data_dir}, {running}")


# ---- ports ----------------------------------------------------------------------------------------

def _suggest(start: int, span: int, avoid: set[int]) -> int | None:
    """The first port after `start` with `span` free ports in a row that the config does not use."""
    for p in range(start + 1, min(start + 200, 65536 - span)):
        block = range(p, p + span)
        if not avoid.intersection(block) and all(port_bindable(q) for q in block):
            return p
    return None


def _owner_pid(owner: str) -> int | None:
    m = re.search(r"\(pid (\d+)\)$", owner)
    return int(m.group(1)) if m else None


def _host_problem(host: str) -> str | None:
    """Why the services could not listen on `host` (not an address of this machine), else None."""
    import socket

    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.bind((host, 0))
    except OSError as e:
        return f"{e.strerror or e}"
    return None


def check_ports(ctx: Context) -> Check:
    cfg = ctx.cfg
    if cfg.mode != "docker":   # docker publishes on the host's address itself
        why = _host_problem(cfg.host)
        if why:
            return Check("ports", FAIL, f"host = {cfg.host!r} is not an address this machine can listen on "
                                        f"({why}); set host = \"127.0.0.1\" in sandbox.toml.")
    specs = sorted(stack.service_specs(cfg), key=lambda spec: spec.role != "broker")   # brokers first
    wanted = [(spec.port, spec.name) for spec in specs]
    wanted.append((cfg.http_port, "health endpoint"))
    if cfg.sasl is not None:
        wanted += [(cfg.sasl_broker_port(n), f"broker-{n} SASL") for n in range(1, cfg.brokers + 1)]
    used = {p for p, _ in wanted}
    free, ours, problems = [], [], []
    for port, who in wanted:
        owner = port_owner(port)
        if owner is None:
            free.append(f"{port} ({who})")
            continue
        pid = _owner_pid(owner)
        if ctx.running and (port in ctx.own_ports or (pid is not None and pid in ctx.own_pids)):
            ours.append(f"{port} ({who})")
            continue
        if who.endswith(" SASL"):
            key, span = "[sasl] port", cfg.brokers
            start = cfg.sasl.port
        elif who.startswith("broker-"):
            key, span = "port", cfg.brokers
            start = cfg.port
        else:
            key, span = ("coordinator_port" if who == "coordinator" else "http_port"), 1
            start = port
        other = _suggest(start, span, used - set(range(start, start + span)))
        value = str(other) if other else "another port"
        note = " (broker N listens on port + N - 1)" if key in ("port", "[sasl] port") and cfg.brokers > 1 else ""
        problems.append(f"port {port} ({who}) is taken by {owner}; stop it or set {key} = {value} "
                        f"in sandbox.toml{note}")
    if problems:
        return Check("ports", FAIL, "; ".join(problems) + ".")
    parts = []
    if ours:
        by = f"supervisor pid {ctx.supervisor_pid}" if ctx.supervisor_pid else "its containers"
        parts.append(f"{', '.join(ours)} in use by this sandbox ({by})")
    if free:
        parts.append(f"{', '.join(free)} free on {cfg.host}")
    return Check("ports", OK, "; ".join(parts))


# ---- disk and data folder -------------------------------------------------------------------------

def check_disk(ctx: Context) -> Check:
    where = _nearest_existing(ctx.cfg.data_dir)
    try:
        usage = shutil.disk_usage(where)
    except OSError as e:
        return Check("disk", WARN, f"cannot read the free space of {where} ({e.strerror or e}); "
                                   f"check that the data folder's disk is mounted")
    text = f"{_size(usage.free)} free of {_size(usage.total)} on the disk of {where}"
    fix = "free some space or set data_dir in sandbox.toml to a folder on a bigger disk"
    if usage.free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, f"only {text} (the journals need at least {_size(DISK_FAIL_BYTES)}); {fix}")
    if usage.free < DISK_WARN_BYTES:
        return Check("disk", WARN, f"only {text} (under {_size(DISK_WARN_BYTES)}); {fix}")
    return Check("disk", OK, text)


def check_data(ctx: Context) -> Check:
    data = ctx.cfg.data_dir
    fix = "or set data_dir in sandbox.toml to a folder you can write"
    if data.exists() and not data.is_dir():
        return Check("data", FAIL, f"data folder {data} is a file, not a folder; move it away {fix}")
    target = data if data.is_dir() else _nearest_existing(data)
    if not target.is_dir():
        return Check("data", FAIL, f"data folder {data} cannot be created because {target} is a file, "
                                   f"not a folder; move it away {fix}")
    try:
        if target == data:
            fd, name = tempfile.mkstemp(prefix=".doctor-", dir=data)
            try:
                os.write(fd, b"sandbox doctor")
            finally:
                os.close(fd)
                os.unlink(name)
            return Check("data", OK, f"{data} is writable")
        # the data folder does not exist yet: `sandbox up` will create it (and its parents) here
        tmp = tempfile.mkdtemp(prefix=".sandbox-doctor-", dir=target)
        try:
            fd, name = tempfile.mkstemp(dir=tmp)
            os.close(fd)
            os.unlink(name)
        finally:
            os.rmdir(tmp)
        return Check("data", OK, f"{data} does not exist yet; `sandbox up` can create it in {target}")
    except OSError as e:
        return Check("data", FAIL, f"cannot write in {target} ({e.strerror or e}); fix its permissions "
                                   f"(e.g. chmod u+w {target}) {fix}")


# ---- docker ---------------------------------------------------------------------------------------

def _engine_version(client) -> str:
    try:
        v = client.version().get("Version")
        return f" (Docker {v})" if v else ""
    except Exception:   # noqa: BLE001 - only decoration for an engine that already answered ping
        return ""


def _container_ports(client, cfg: SandboxConfig) -> set[int]:
    """Host ports published by this sandbox's running containers."""
    from sandbox.runner.docker import selector

    out: set[int] = set()
    try:
        for c in client.containers.list(filters={"label": selector(cfg)}):
            for bindings in (c.ports or {}).values():
                for b in bindings or []:
                    if str(b.get("HostPort", "")).isdigit():
                        out.add(int(b["HostPort"]))
    except Exception:   # noqa: BLE001 - the ports check then names docker-proxy; no traceback
        pass
    return out


def _sdk_installed() -> bool:
    """Whether the Docker SDK is importable (sandbox.runner.docker is the one module importing it)."""
    try:
        return importlib.util.find_spec("docker") is not None
    except (ImportError, ValueError):
        return False


def check_docker(ctx: Context) -> Check:
    cfg = ctx.cfg
    from sandbox.runner.docker import DockerError, connect

    if cfg.mode != "docker":
        if not _sdk_installed():
            return Check("docker", OK, "not needed in native mode; the Docker SDK is not installed")
        try:
            client = connect(timeout=DOCKER_PEEK_TIMEOUT_S)
        except DockerError:
            return Check("docker", OK, "not needed in native mode; no Docker engine answers")
        except Exception:   # noqa: BLE001 - informational only: never fail natively
            return Check("docker", OK, "not needed in native mode")
        try:
            return Check("docker", OK, f"not needed in native mode; a Docker engine answers{_engine_version(client)}")
        finally:
            client.close()
    try:
        client = connect(timeout=DOCKER_TIMEOUT_S)
    except DockerError as e:
        msg = str(e).strip()
        return Check("docker", FAIL, msg if msg.endswith(".") else msg + ".")
    try:
        detail = f"the engine answers{_engine_version(client)}"
        theirs = _container_ports(client, cfg)
        if theirs:
            ctx.own_ports |= theirs
            ctx.containers_up = True
            if not ctx.supervisor_pid:   # brought back by their restart policy, e.g. after a reboot
                detail += f"; containers of sandbox {cfg.name} are running (`sandbox up` adopts them)"
        return Check("docker", OK, detail)
    finally:
        client.close()


# ---- clock ----------------------------------------------------------------------------------------

def _newest_file(root: Path, limit: int) -> tuple[Path | None, float, int, bool]:
    """(newest file, its mtime, files seen, scan cut short) under root, at most `limit` entries."""
    newest, newest_t, seen, todo = None, float("-inf"), 0, [root]
    while todo:
        d = todo.pop()
        try:
            with os.scandir(d) as it:
                for entry in it:
                    seen += 1
                    if seen > limit:
                        return newest, newest_t, seen - 1, True
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(Path(entry.path))
                            continue
                        t = entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        continue
                    if t > newest_t:
                        newest, newest_t = Path(entry.path), t
        except OSError:
            continue
    return newest, newest_t, seen, False


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_clock(ctx: Context) -> Check:
    now = time.time()
    year = datetime.fromtimestamp(now, timezone.utc).year
    problems = []
    if year < CLOCK_MIN_YEAR:
        problems.append(f"the system clock says {_iso(now)}, before {CLOCK_MIN_YEAR}; set the date "
                        f"right (turn on network time sync)")
    data = ctx.cfg.data_dir
    scanned = ""
    if data.is_dir():
        newest, t, seen, cut = _newest_file(data, SCAN_MAX_ENTRIES)
        scanned = f"; {'the first ' if cut else ''}{seen} entr{'y' if seen == 1 else 'ies'} of {data} checked"
        if newest is not None and t > now + CLOCK_SKEW_S:
            problems.append(f"{newest} is dated {_iso(t)}, {t - now:.0f} s ahead of this clock (the clock went "
                            f"back, or the data came from another machine), which breaks time-based retention "
                            f"and segment rolling; set the clock right, or start clean with `sandbox down --purge`")
    if problems:
        return Check("clock", WARN, "; ".join(problems))
    return Check("clock", OK, f"{_iso(now)}, no file dated in the future{scanned}")


# ---- python ---------------------------------------------------------------------------------------

def check_python(_ctx: Context) -> Check:
    impl = platform.python_implementation()
    return Check("python", OK, f"{impl} {platform.python_version()} ({sys.executable}) on "
                               f"{platform.system()} {platform.release()} {platform.machine()}".rstrip())


# ---- the command ----------------------------------------------------------------------------------

ORDER = ("config", "ports", "disk", "data", "docker", "clock", "python")


def run_checks(ctx: Context) -> list[Check]:
    done = {}
    # docker first: in docker mode the engine says which ports this sandbox's containers publish
    for name, fn in (("config", check_config), ("docker", check_docker), ("ports", check_ports),
                     ("disk", check_disk), ("data", check_data), ("clock", check_clock),
                     ("python", check_python)):
        try:
            done[name] = fn(ctx)
        except Exception as e:   # noqa: BLE001 - a check that breaks is a failed check, not a traceback
            done[name] = Check(name, FAIL, f"the check itself failed ({type(e).__name__}: {e}); "
                                           f"please report it")
    return [done[n] for n in ORDER]


def doctor(
    as_json: bool = json_option("Print the checks as JSON."),
    config: Optional[Path] = config_option(),
) -> None:
    """Check the machine: sandbox.toml, ports free, disk, data folder writable, Docker engine, clock.
    Exit 0 when no check failed (warnings allowed), 1 when one did, 2 when sandbox.toml is broken."""
    ctx = load(config)
    checks = run_checks(ctx)
    ok = not any(c.result == FAIL for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        rows = [[c.name, "FAIL" if c.result == FAIL else c.result, c.detail] for c in checks]
        for line in format_columns(["CHECK", "RESULT", "DETAIL"], rows):
            typer.echo(line)
        failed = sum(c.result == FAIL for c in checks)
        warned = sum(c.result == WARN for c in checks)
        if failed:
            typer.echo(f"{failed} check(s) failed" + (f", {warned} warning(s)" if warned else "")
                       + "; fix them and run `sandbox doctor` again")
        elif warned:
            typer.echo(f"no check failed, {warned} warning(s)")
        else:
            typer.echo("all checks passed")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add `sandbox doctor` to the CLI."""
    app.command()(doctor)
