"""What `sandbox status` and `sandbox monitor` both show, gathered once: the supervisor's live
state, else the services found running without it, and the status built from them (a module of
its own so that monitor and status share it without importing each other's commands)."""

from __future__ import annotations

from sandbox.config import SandboxConfig
from sandbox.runner import control, orphans, stack

from .common import client


def gather(cfg: SandboxConfig, kafka=None) -> tuple[dict, int, bool]:
    """(the status, its exit code, whether the supervisor runs with a stale state file): what
    `sandbox status` and `sandbox monitor` show, from the supervisor's live state, else the
    services found running without it. kafka: a client to ask with (one is made when None)."""
    from sandbox.health.status import build_status

    sup_pid = stack.running_pid(cfg)
    state = stack.live_state(cfg) if cfg.mode == "docker" or sup_pid else None
    # no state to trust (no supervisor, or one that stopped beating): find the services ourselves
    left = orphans.left_running(stack.service_specs(cfg)) if state is None and cfg.mode != "docker" else {}
    stale = bool(sup_pid) and state is None   # the supervisor runs, its state file is not fresh
    if state is None and left:
        state = control.orphaned_state(cfg, left)
        if sup_pid:   # orphaned means alive while the supervisor is not: this one is alive (paused, wedged,
            for s in state["services"]:   # or without room for its state file), they still run under it
                if s["state"] == "orphaned":
                    s["state"] = "running"
    c = (kafka or client(stack.bootstrap(cfg))) if state is not None else None
    try:
        st = build_status(name=cfg.name, mode=cfg.mode, bootstrap=stack.bootstrap(cfg), state=state, client=c,
                          coordinator=(cfg.connect_host, cfg.coordinator_port),
                          sasl_bootstrap=cfg.sasl_bootstrap)
    finally:
        if c is not None and c is not kafka:
            c.close()
    running = state is not None and (not left or bool(sup_pid))
    st["running"] = running
    st["restart_needed"] = stack.restart_needed(cfg) if running else None
    full = disk_full(cfg) if (left and sup_pid) or (state is None and not left and stack.running_pid(cfg)) else None
    if full:
        st["healthy"] = False
        st["problems"].insert(0, f"the supervisor cannot write its state file: {full}; free space on that disk "
                                 f"(it carries on by itself once there is room)")
    elif left and sup_pid:
        st["healthy"] = False
        st["problems"].insert(0, f"the supervisor (pid {sup_pid}) does not answer (paused or wedged); "
                                 f"{len(left)} service(s) still running: `sandbox down` stops them all")
    elif left:
        st["healthy"] = False
        st["problems"].insert(0, f"supervisor not running; {len(left)} service(s) still running: "
                                 f"`sandbox up` adopts them, `sandbox down` stops them")
    elif state is None and cfg.mode == "docker":
        st["problems"].insert(0, "the docker watcher is not running; containers may still run: "
                                 "`sandbox up --docker` adopts them, `sandbox down` removes them")
    elif state is None and not left and stack.running_pid(cfg):
        st["problems"].insert(0, "the supervisor does not answer (its state file is stale): it may be paused; "
                                 "`sandbox down` then `sandbox up` replaces it")
    if left:
        code = 1
    elif state is None:
        code = 3
    else:
        code = 0 if st["healthy"] else 1
    return st, code, stale or bool(left)


def disk_full(cfg: SandboxConfig) -> str | None:
    """Why the data folder takes no write when its disk is full, else None: a supervisor whose
    state file went stale then has no room to write it, it is not wedged."""
    from sandbox.runner.quarantine import DISK_FULL, path_problem

    problem = path_problem(cfg.data_dir)
    return problem if problem and problem.startswith(DISK_FULL) else None
