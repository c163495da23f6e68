"""CLI commands that drive a whole sandbox: init, up, down, restart, recover (natively, or in docker
mode through docker_cmds), and the hidden `supervise` that `up` starts in the background. The
supervisor's control protocol is runner/control.py's; these commands only call it."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import ConfigError, SandboxConfig
from sandbox.config_init import write_init
from sandbox.runner import control, orphans, stack
from sandbox.runner.detach import spawn_detached
from sandbox.runner.quarantine import QuarantineError, copy_failure, has_data, prune, quarantine

from . import status_cmds
from .common import ConfigOpt, client, control_call, fail, load, read_config
from .stack_support import (
    apply_declared, check_ports, declared_on_running, sasl_note, stop_stack, supervisor_argv, up_foreground, wait_ready,
)


def init(folder: Path = typer.Argument(Path("."), help="Where to write sandbox.toml.")) -> None:
    """Write a commented sandbox.toml in the current folder (or FOLDER, made if it is missing)."""
    try:
        path = write_init(folder)
    except ConfigError as e:
        fail(str(e))
    typer.echo(f"wrote {path}; edit it, then run `sandbox up`")


def up(
    docker: bool = typer.Option(False, "--docker", help="Run in Docker containers (or mode = \"docker\" in sandbox.toml)."),
    brokers: Optional[int] = typer.Option(None, "--brokers", help="Number of brokers."),
    port: Optional[int] = typer.Option(None, "--port", help="Broker 1's Kafka port."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops everything."),
    ephemeral: bool = typer.Option(False, "--ephemeral", help="Keep data in a temp folder deleted by `down`."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.01, max=86_400.0, help="Seconds to wait for healthy."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Start the coordinator and brokers, wait until healthy, create the declared topics."""
    base = read_config(config)
    docker = docker or base.mode == "docker"
    running = stack.running_pid(stack.load_stack_config(config, Path.cwd()))
    if running:
        cfg = stack.load_stack_config(config, Path.cwd())
        typer.echo(f"sandbox {cfg.name} is already running (supervisor pid {running}); bootstrap {stack.bootstrap(cfg)}")
        pending = stack.restart_needed(cfg)
        if pending:
            typer.echo(pending)
        try:   # a value no sandbox takes is said as such, not suggested for the next `up`
            base.with_overrides(**{k: v for k, v in {"brokers": brokers, "port": port}.items() if v is not None})
        except ConfigError as e:
            fail(str(e))
        asked = {"--port": (port, cfg.port), "--brokers": (brokers, cfg.brokers)}
        differs = [f"{flag} {want} (it runs with {flag} {have})" for flag, (want, have) in asked.items()
                   if want is not None and want != have]
        if differs:
            fail(f"the running sandbox was not changed: {', '.join(differs)}; `sandbox down` then "
                 f"`sandbox up {' '.join(d.split(' (')[0] for d in differs)}` starts it that way", 1)
        # what sandbox.toml declares is in place after every `up`, also one after an `up` that
        # timed out while the stack was still starting (the topics come once it is healthy)
        declared_on_running(cfg, running, timeout)
        raise typer.Exit(0)
    if base.path is None:   # no sandbox.toml here: said, so a subfolder does not start a second stack unnoticed
        above = next((d / "sandbox.toml" for d in Path.cwd().absolute().parents if (d / "sandbox.toml").is_file()), None)
        typer.echo(f"note: no sandbox.toml in {Path.cwd()}: starting sandbox {base.name} with the defaults" +
                   (f"; {above} is a sandbox's file: run `sandbox up` there, or `sandbox up -c {above}`" if above
                    else " (`sandbox init` writes a file to change them)"), err=True)
    if stack.runtime_file(base).is_dir():   # said before anything is made (an ephemeral temp folder)
        fail(stack.drop_runtime(base) or f"{stack.runtime_file(base)} is a folder", 1)
    overrides = {k: v for k, v in {"brokers": brokers, "port": port}.items() if v is not None}
    if docker:
        overrides["mode"] = "docker"
        if ephemeral:
            fail("--ephemeral is for native mode; in Docker `sandbox down --purge` deletes the journal volumes")
    if ephemeral:
        overrides["data_dir"] = tempfile.mkdtemp(prefix="sandbox-" + re.sub(r"[^A-Za-z0-9._-]", "-", base.name) + "-")
    try:
        cfg = base.with_overrides(**overrides) if overrides else base
    except ConfigError as e:
        fail(str(e))
    if docker:
        from .docker_cmds import up_docker

        return up_docker(cfg, overrides, timeout, foreground)
    stale = control.stop_stale(cfg)
    if stale:
        typer.echo(f"stopped service(s) a stopped supervisor left running with an older sandbox.toml: {stale}; "
                   f"starting them as the file says now")
    left = control.left_running(cfg)
    adopted = {spec.port for spec in stack.service_specs(cfg) if spec.name in left}
    adopted |= {cfg.sasl_broker_port(n) for n in range(1, cfg.brokers + 1) if f"broker-{n}" in left}   # its SASL listener
    check_ports(cfg, skip=adopted)
    if left:
        typer.echo(f"adopting {len(left)} service(s) a stopped supervisor left running: {orphans.describe(left)}")
    _make_data_dir(cfg)
    rt = stack.runtime_file(cfg)
    problem = stack.drop_runtime(cfg)
    if problem:
        fail(problem, 1)
    stack.write_runtime(cfg, overrides=overrides, ephemeral=ephemeral, config_text=cfg.source,
                        running=stack.running_settings(cfg))
    t0 = time.monotonic()
    if foreground:
        def cleanup() -> None:
            if ephemeral:
                shutil.rmtree(cfg.data_dir, ignore_errors=True)
                rt.unlink(missing_ok=True)

        return up_foreground(cfg, timeout, cleanup)
    pid = spawn_detached(supervisor_argv(cfg), cfg.logs_dir / "supervisor.log", cwd=cfg.root)
    wait_ready(cfg, pid, timeout, detached=True)
    apply_declared(cfg)
    typer.echo(f"sandbox {cfg.name} is up in {time.monotonic() - t0:.1f} s: {cfg.brokers} broker(s), "
               f"bootstrap {stack.bootstrap(cfg)}" + sasl_note(cfg))


def _make_data_dir(cfg: SandboxConfig) -> None:
    """The data and log folders, or one sentence and a fix (what `sandbox doctor` would say)."""
    from .doctor_cmds import FAIL, Context, check_data

    found = check_data(Context(cfg, None, set(), set()))
    if found.result == FAIL:
        detail = found.detail if str(cfg.data_dir) in found.detail else f"{cfg.data_dir}: {found.detail}"
        fail(f"the sandbox cannot keep its data here: {detail}", 1)
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = Path(e.filename) if e.filename else cfg.data_dir
        if where.exists() and not where.is_dir():   # a file where a folder of the sandbox goes
            fail(f"{where} is a file, not a folder; move it away (the sandbox keeps "
                 f"{'its logs' if where == cfg.logs_dir else 'its data'} there) and run `sandbox up` again", 1)
        fail(f"the folder {where} cannot be created ({e.strerror or e}); "
             f"set data_dir in sandbox.toml to a folder you can write", 1)
    log = cfg.logs_dir / "supervisor.log"
    try:   # the supervisor's own log, opened by `up` before anything starts
        with open(log, "ab"):
            pass
    except OSError as e:
        fail(f"the log file {log} cannot be written ({e.strerror or e}); make {cfg.logs_dir} writable "
             f"(on Linux `lsattr`/`chattr -i` shows and lifts an immutable flag) or set data_dir in sandbox.toml "
             f"to a folder you can write", 1)


def supervise(config: Optional[Path] = ConfigOpt) -> None:
    """The background supervisor `sandbox up` starts (not for direct use)."""
    try:
        code = stack.supervise_main(config, Path.cwd())
    except ConfigError as e:
        fail(str(e))
    raise typer.Exit(code)


def down(purge: bool = typer.Option(False, "--purge", help="Also delete this sandbox's data."),
         config: Optional[Path] = ConfigOpt) -> None:
    """Stop every process of this sandbox (gracefully, then by force)."""
    cfg = load(config)
    ephemeral = stack._read_runtime(stack.runtime_file(cfg)).get("ephemeral") is True
    stopped = stop_stack(cfg)
    typer.echo(f"sandbox {cfg.name} stopped" if stopped else f"sandbox {cfg.name} was not running")
    if cfg.mode == "docker":
        from .docker_cmds import down_docker

        down_docker(cfg, purge)
    if ephemeral:   # a temporary folder the sandbox made for itself: all of it goes
        shutil.rmtree(cfg.data_dir, ignore_errors=True)
        typer.echo(f"deleted {cfg.data_dir}")
    elif purge:
        kept = purge_data(cfg)
        typer.echo(f"deleted the sandbox's data in {cfg.data_dir}" + (
            f"; kept what the sandbox did not make: {', '.join(kept)}" if kept else ""))
    if cfg.mode == "docker" and not purge:
        return  # keep `mode: docker`: a later `down --purge` must still find the journal volumes
    problem = stack.drop_runtime(cfg)
    if problem:
        typer.echo(f"note: {problem}", err=True)


_MADE = {"logs", "quarantine", "run", "coordinator", "topics.json", ".write-probe"}
_SERVICE_LOG = re.compile(r"^(coordinator|supervisor|broker-\d+)\.log(\.\d+)?$")


def purge_data(cfg: SandboxConfig) -> list[str]:
    """Delete what the sandbox keeps in its data folder (journals, logs, quarantine, its own
    files), never anything else a user put there; the folder too once empty. The names kept."""
    made = _MADE | set(cfg.broker_names())
    kept = []
    try:
        entries = sorted(cfg.data_dir.iterdir())
    except OSError:
        return kept
    for entry in entries:
        name = entry.name
        ours = (name in made or name.startswith("supervisor.") or name.endswith((".restore-owed", ".tmp"))
                or (name.startswith("broker-") and name[7:].isdigit()))
        if not ours:
            kept.append(name)
        elif name == "logs" and entry.is_dir() and not entry.is_symlink():
            # a folder a user may drop files of their own into: only the services' logs go
            mine = [f for f in sorted(entry.iterdir()) if not _SERVICE_LOG.match(f.name) or f.is_dir()]
            for f in sorted(entry.iterdir()):
                if _SERVICE_LOG.match(f.name) and not f.is_dir():
                    try:
                        f.unlink(missing_ok=True)
                    except OSError:   # held by another program (Windows): kept, and said
                        mine.append(f)
            if mine:
                kept += [f"logs/{f.name}" for f in mine]
            else:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if not kept:
        try:
            cfg.data_dir.rmdir()
        except OSError:
            pass
    return kept


def restart(service: Optional[str] = typer.Argument(None, help="One service, or all."),
            config: Optional[Path] = ConfigOpt) -> None:
    """Graceful restart of one service or all of them."""
    cfg = load(config)
    control_call(control.require_running, cfg)
    pending = stack.restart_needed(cfg)
    if pending and not service:   # ports, brokers, host or data_dir changed: a new stack applies them
        typer.echo(f"applying sandbox.toml: {pending.split(':')[0]}")
        kept = stack.runtime_overrides(cfg)   # `up --brokers 3 --port P` still hold
        if cfg.mode != "docker":   # a new port another program holds: said before the running stack stops
            wanted = read_config(config)
            wanted = wanted.with_overrides(**kept) if kept else wanted
            ours = {spec.port for spec in stack.service_specs(cfg)} | {cfg.http_port}
            if cfg.sasl is not None:
                ours |= {cfg.sasl_broker_port(n) for n in range(1, cfg.brokers + 1)}
            check_ports(wanted, skip=ours)
        stop_stack(cfg)
        up(docker=cfg.mode == "docker", brokers=kept.get("brokers"), port=kept.get("port"), foreground=False,
           ephemeral=False, timeout=60.0, config=config)
        return
    targets = control_call(control.restart, cfg, service)
    typer.echo(f"restarted {', '.join(targets)}")


def recover(wipe: bool = typer.Option(False, "--wipe", help="Quarantine every journal, start clean (a new cluster id), re-create every known topic."),
            config: Optional[Path] = ConfigOpt) -> None:
    """Repair journals now (stop, restart: each service repairs its journal at start)."""
    cfg = load(config)
    # every known topic, read before anything starts: the new stack's catalog, seeing an empty
    # cluster, would otherwise forget the topics apps made before they are put back
    known = stack.desired_topics(cfg) if wipe else {}
    was_running = stop_stack(cfg)
    from sandbox.runner.catalog import forget_cluster_id   # a wipe makes a new cluster: a new id

    if cfg.mode == "docker":
        from .docker_cmds import recover_docker

        if wipe:   # before: each new container is given the catalog's id as it is made
            forget_cluster_id(cfg)
        recover_docker(cfg, wipe)
    elif wipe:
        moved: list[str] = []
        for spec in stack.service_specs(cfg):
            # an empty folder (left by an earlier --wipe that stopped half way) is no journal: an
            # empty quarantine of it would count towards keep_quarantines and prune a real one
            if spec.data_dir.exists() and (not spec.data_dir.is_dir() or has_data(spec.data_dir)):
                try:
                    dest, how = quarantine(spec.data_dir, cfg.quarantine_dir, spec.name, time.time())
                except (OSError, QuarantineError) as e:
                    why = e if isinstance(e, QuarantineError) else copy_failure(e, cfg.quarantine_dir)
                    done = (f"already moved aside: {'; '.join(moved)}; the others were not. " if moved else
                            "nothing was moved; ")
                    fail(f"{spec.name}'s journal {spec.data_dir} could not be moved aside ({why}); {done}"
                         f"Nothing was deleted and the sandbox is stopped: fix that (free space if the disk is "
                         f"full) and run `sandbox recover --wipe` again, which moves the rest")
                prune(cfg.quarantine_dir, spec.name, cfg.recovery.keep_quarantines)
                moved.append(f"{spec.name}'s journal to {dest}")
                typer.echo(f"moved {spec.name}'s journal to {dest} ({how})")
        forget_cluster_id(cfg)   # only once every journal is aside (a failure above keeps them, and the id)
    up(docker=cfg.mode == "docker", brokers=None, port=None, foreground=False, ephemeral=False, timeout=60.0, config=config)
    if wipe:
        from sandbox.runner.manifest import reconcile

        with client(stack.bootstrap(cfg)) as c:
            for m in reconcile(known, c):
                typer.echo(f"  {m}")
    typer.echo("recovered" + ("" if was_running else " (the sandbox was not running; it is now)"))


def register(app: typer.Typer) -> None:
    """Add init, up, down, status, logs, restart, recover (and the hidden supervise) to the CLI."""
    app.command()(init)
    app.command()(up)
    app.command(hidden=True)(supervise)
    app.command()(down)
    status_cmds.register(app)
    app.command()(restart)
    app.command()(recover)
