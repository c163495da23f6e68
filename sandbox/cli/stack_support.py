"""What `up`, `down`, `restart` and `recover` share in native and docker mode: ports checked before a
start, the declared topics applied once healthy, the supervisor's command line, waiting until ready
and stopping (both carried out by runner/control.py), and `up --foreground`."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn

import typer

from sandbox.config import SandboxConfig
from sandbox.runner import control, stack
from sandbox.runner.probe import port_owner
from sandbox.runner.statefile import LockHeld, hold_lock, lock_holder

from .common import client, fail


def supervisor_argv(cfg: SandboxConfig) -> list[str]:
    """The background supervisor's command (`sandbox supervise`)."""
    return [sys.executable, "-m", "sandbox", "supervise"] + (["--config", str(cfg.path)] if cfg.path else [])


def check_ports(cfg: SandboxConfig, only_http: bool = False, skip: set[int] = frozenset()) -> None:
    """One sentence (exit 2) naming the first port another program holds."""
    wanted = [] if only_http else [(spec.port, spec.name) for spec in stack.service_specs(cfg)
                                   if spec.port not in skip]
    if not only_http and cfg.sasl is not None:
        wanted += [(p, f"broker-{n}'s SASL listener") for n in range(1, cfg.brokers + 1)
                   if (p := cfg.sasl_broker_port(n)) not in skip]
    for p, who in wanted + ([(cfg.http_port, "the health endpoint")] if cfg.http_port not in skip else []):
        owner = port_owner(p)
        if owner:
            where = ("[sasl] port" if "SASL" in who else
                     "[sandbox] port / coordinator_port / http_port) or with --port")
            fail(f"port {p} (for {who}) is taken by {owner}; stop it or choose other ports "
                 f"in sandbox.toml ({where}{')' if 'SASL' in who else ''}.")


def declares(cfg: SandboxConfig) -> bool:
    """Whether sandbox.toml declares topics, [sasl] users or [[acls]] for `up` to put in place."""
    return bool(cfg.topics or cfg.acls or (cfg.sasl is not None and cfg.sasl.users))


def apply_declared(cfg: SandboxConfig, only_missing_users: bool = False) -> None:
    """Create (or grow) the topics sandbox.toml declares, set its [sasl] users' credentials and
    create its [[acls]]; exit 1 when one could not be. only_missing_users: credentials only for
    users that have none (a running stack: a password changed with a tool is not reset)."""
    from sandbox.runner.manifest import apply_acls, apply_users, reconcile

    if not declares(cfg):
        return
    users = cfg.sasl.users if cfg.sasl is not None else {}
    with client(stack.bootstrap(cfg)) as c:
        msgs = apply_acls(cfg.acls, c)[0]   # first: a topic made before its ACLs would be open meanwhile
        msgs += reconcile(cfg.topics, c) if cfg.topics else []
        msgs += apply_users(users, c, only_missing=only_missing_users)
    for m in msgs:
        typer.echo(f"  {m}")
    failed = [m for m in msgs if m.startswith("failed")]
    if failed:   # a declared topic that is not there is an error, whatever else went well
        fail(f"{len(failed)} declared change(s) failed ({'; '.join(failed)}); fix [topics], [sasl] or [[acls]] in "
             f"{cfg.path or 'sandbox.toml'}: the running sandbox applies it when you save", 1)


def sasl_note(cfg: SandboxConfig) -> str:
    """What `up` adds to its last line with [sasl]: where SASL clients connect."""
    if cfg.sasl is None:
        return ""
    return (f"; SASL_PLAINTEXT bootstrap {cfg.sasl_bootstrap} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "
            f"{len(cfg.sasl.users)} user(s) in [sasl])")


def still_starting(cfg: SandboxConfig, detail: str, code: int = 1) -> NoReturn:
    """An `up` whose time ran out while its detached supervisor (or docker watcher) goes on: said
    so, with what `sandbox up` and `sandbox down` then do, and what is not healthy yet."""
    then = ("run `sandbox up` again once it is healthy to create what sandbox.toml declares, or "
            if declares(cfg) else "")
    fail(f"the sandbox did not become healthy in time; it goes on starting in the background "
         f"(`sandbox status` shows it): {then}`sandbox down` stops it:\n{detail}", code)


def wait_ready(cfg: SandboxConfig, pid: int, timeout: float, stop=None, detached: bool = False) -> dict:
    """control.wait_ready; Ctrl-C (`stop` set) is exit 130, every other failure one sentence.
    detached: the supervisor `pid` runs on its own, so a timeout says it goes on starting and that
    the declared topics come with the next `sandbox up` (they are created only once healthy)."""
    try:
        return control.wait_ready(cfg, pid, timeout, stop)
    except (control.Interrupted, KeyboardInterrupt):
        if detached and control.REAL.alive(pid):   # Ctrl-C stops this command, not the stack
            typer.echo(f"interrupted: sandbox {cfg.name} goes on starting in the background (`sandbox status` "
                       f"shows it); `sandbox down` stops it", err=True)
        raise typer.Exit(130) from None
    except control.NotReady as e:
        if detached and control.REAL.alive(pid):
            still_starting(cfg, e.detail, e.code)
        other = lock_holder(cfg.data_dir / stack.LOCK_FILE)
        if detached and other not in (None, pid) and control.REAL.alive(other):
            already_running(cfg, other)   # another `sandbox up` started its supervisor first
        fail(e.message, e.code)
    except control.ControlError as e:
        fail(e.message, e.code)


def already_running(cfg: SandboxConfig, pid: int) -> NoReturn:
    """Another supervisor runs this sandbox (it holds the data folder's lock): said, exit 0."""
    typer.echo(f"sandbox {cfg.name} is already running (supervisor pid {pid}); bootstrap {stack.bootstrap(cfg)}")
    raise typer.Exit(0)


def stop_stack(cfg: SandboxConfig) -> bool:
    """Stop this sandbox's supervisor and any service it left; True if anything was running."""
    done = control.stop(cfg)
    if done.left and not done.supervisor_pid:
        typer.echo(f"the supervisor was not running; stopping the {len(done.left)} service(s) it left: "
                   f"{done.left_described}")
    return done.anything


def up_foreground(cfg: SandboxConfig, timeout: float, cleanup: Callable[[], None]) -> None:
    """The supervisor in this process until Ctrl-C, which stops everything (then `cleanup`: the
    ephemeral data, or in docker mode the containers). On a terminal the live monitor takes the
    screen once the stack is healthy; otherwise every event is printed as a line (logs, CI)."""
    import logging
    import os
    import threading

    from sandbox.lifecycle import raise_open_files_limit
    from sandbox.runner.stack import StackSupervisor

    from .monitor import run_monitor

    try:   # the one supervisor of this data folder (a detached one started meanwhile holds it)
        lock = hold_lock(cfg.data_dir / stack.LOCK_FILE)
    except LockHeld as e:
        already_running(cfg, e.holder or 0)
    on_terminal = sys.stdout.isatty()
    handler = None
    if on_terminal:   # log lines would tear the dashboard: they go to the supervisor's log file
        handler = logging.FileHandler(cfg.logs_dir / "supervisor.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)

    def show(e: dict) -> None:
        typer.echo(f"{e['time']} {e['service']} {e['kind']}: {e['detail']}")

    raise_open_files_limit(logging.getLogger("sandbox.runner"))   # the services it starts inherit it
    sup = StackSupervisor(cfg, on_event=None if on_terminal else show)
    done = threading.Event()
    failed = threading.Event()

    def attached() -> None:
        try:
            wait_ready(cfg, os.getpid(), timeout, stop=sup.stop)
            apply_declared(cfg)
        except typer.Exit as e:   # not healthy in time (the sentence is printed): stop it all, exit 1
            if e.exit_code != 130:   # 130: stopped by Ctrl-C, not a failure
                failed.set()
            sup.stop.set()
            return
        typer.echo(f"sandbox {cfg.name} is up; bootstrap {stack.bootstrap(cfg)} (Ctrl-C stops it)")
        if on_terminal:
            run_monitor(cfg, stop=done)

    def announce_stop() -> None:   # Ctrl-C is honoured at once, and said at once
        while not done.is_set():
            if sup.stop.wait(0.1):
                if not failed.is_set():
                    typer.echo(f"stopping sandbox {cfg.name} (services first, then the supervisor)...")
                return

    watcher = threading.Thread(target=attached, name="attached", daemon=True)
    watcher.start()
    threading.Thread(target=announce_stop, name="announce-stop", daemon=True).start()
    try:
        code = sup.run()
    finally:
        done.set()
        watcher.join(5)
        if handler is not None:   # closed first: Windows cannot delete an open log (an --ephemeral folder)
            logging.getLogger().removeHandler(handler)
            handler.close()
        lock.close()
        cleanup()
    typer.echo(f"sandbox {cfg.name} stopped")
    raise typer.Exit(1 if failed.is_set() else code)


def declared_on_running(cfg: SandboxConfig, pid: int, timeout: float) -> None:
    """`up` on a running sandbox: what sandbox.toml declares and the cluster lacks is created.
    A stack still starting (an earlier `up` timed out) is waited for; one that was up and is not
    healthy now (a broker paused or restarting) is not: that is said, and the next `up` does it."""
    if not declares(cfg):
        return
    state = stack.read_status_file(cfg) or {}
    svcs = state.get("services", [])
    if not control.ready(state):
        if control.was_ready(state):
            down = ", ".join(f"{s.get('name')}: {s.get('state')}" for s in svcs if not s.get("healthy"))
            typer.echo(f"not every service is healthy now ({down}); what sandbox.toml declares is checked "
                       f"by the next `sandbox up` once `sandbox status` says healthy")
            return
        wait_ready(cfg, pid, timeout, detached=True)   # still starting
    apply_declared(cfg, only_missing_users=True)
