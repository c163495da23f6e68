"""Docker mode of the stack commands (`up --docker`, `down`, `logs`, `recover` when the sandbox runs in
containers) and `sandbox image`, which builds the image or writes its build context for compose/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import SandboxConfig
from sandbox.runner import stack
from sandbox.runner.detach import spawn_detached
from sandbox.runner.docker_plan import NotHealthyInTime

from .common import ConfigOpt, docker_call as _call, fail
from .stack_support import (
    apply_declared, check_ports, sasl_note, still_starting, supervisor_argv, up_foreground, wait_ready,
)


def _engine(cfg: SandboxConfig, image: str | None = None):
    from sandbox.runner.docker import DockerStack, connect

    return _call(lambda: DockerStack(cfg, client=connect(), image=image))


def up_docker(cfg: SandboxConfig, overrides: dict, timeout: float, foreground: bool = False) -> None:
    """Build the image if needed, create network, volumes and containers (or adopt the ones that
    are already there, e.g. brought back by their restart policy after a reboot), start the
    watcher, wait for healthy, create the declared topics, print the bootstrap address.
    foreground: run the watcher in this process instead (as `up --foreground`); Ctrl-C then
    removes the containers and the network, keeping the volumes (as `docker compose up` does)."""
    from sandbox.runner.docker_image import ensure_image

    t0 = time.monotonic()
    eng = _engine(cfg)
    _call(eng.check_ours)   # another folder's sandbox of the same name: refused, never adopted
    existing = _call(eng.containers)
    check_ports(cfg, only_http=bool(existing))  # our own containers hold their ports already
    if existing:
        typer.echo(f"adopting {len(existing)} existing container(s) of sandbox {cfg.name}")
    image = _call(ensure_image, eng.client, cfg.docker.base_image, lambda m: typer.echo(m))
    eng.image = image
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    stack.runtime_file(cfg).unlink(missing_ok=True)
    stack.write_runtime(cfg, overrides={**overrides, "mode": "docker"}, ephemeral=False,
                        config_text=cfg.source, image=image, running=stack.running_settings(cfg))
    retired = _call(eng.up)
    if retired:
        typer.echo(f"stopped and removed {', '.join(retired)} (no longer in sandbox.toml: brokers = {cfg.brokers}); "
                   f"their journal volumes are kept (`sandbox down --purge` deletes them)")
    if foreground:
        def cleanup() -> None:
            removed = _call(eng.down, False)
            typer.echo(f"removed {len(removed)} container(s) and network(s); the journal volumes are kept")

        return up_foreground(cfg, timeout, cleanup)
    pid = spawn_detached(supervisor_argv(cfg), cfg.logs_dir / "supervisor.log", cwd=cfg.root)
    try:
        # --timeout is the whole `up`'s: what the image check and the containers' creation took
        # is spent (the host's ApiVersions round trip can answer in well under a second)
        _call(eng.wait_healthy, max(0.0, timeout - (time.monotonic() - t0)))
    except NotHealthyInTime as e:   # the containers and their watcher go on: as a native `up` says it
        still_starting(cfg, e.detail)
    wait_ready(cfg, pid, max(0.0, timeout - (time.monotonic() - t0)), detached=True)
    apply_declared(cfg)
    typer.echo(f"sandbox {cfg.name} is up in Docker in {time.monotonic() - t0:.1f} s: {cfg.brokers} broker "
               f"container(s), image {image}, bootstrap {stack.bootstrap(cfg)} (containers on the "
               f"{_call(eng.network).name} network use broker-1:19092)" + sasl_note(cfg))


def down_docker(cfg: SandboxConfig, purge: bool) -> None:
    eng = _engine(cfg)
    removed = _call(eng.down, purge)
    if eng.disconnected:
        typer.echo(f"disconnected {', '.join(eng.disconnected)} (not the sandbox's) from its network; "
                   f"they keep running")
    typer.echo(f"removed {len(removed)} container(s), network(s)" + (" and volume(s)" if purge else
               "; the journal volumes are kept (`sandbox down --purge` deletes them)"))


def logs_docker(cfg: SandboxConfig, service: str, follow: bool, n: int) -> None:
    eng = _engine(cfg)
    if service not in eng.plans:
        fail(f"no service {service!r}; services are {', '.join(eng.plans)} and supervisor")
    if _call(eng.container, service) is None:
        fail(f"container of {service} does not exist; start the sandbox with `sandbox up --docker`")
    if not follow:
        for line in _call(eng.logs, service, tail=n):
            typer.echo(line)
        return
    for chunk in _call(eng.follow_logs, service, n):
        typer.echo(chunk.decode("utf-8", errors="replace"), nl=False)


def recover_docker(cfg: SandboxConfig, wipe: bool) -> None:
    """`recover` in docker mode: restart every container (each repairs its journal at start); with
    wipe, every service onto a fresh journal volume instead (the old ones kept as quarantines)."""
    from sandbox.runner.docker_image import ensure_image

    eng = _engine(cfg)
    if wipe:   # re-created containers need the current image; a restart keeps theirs
        eng.image = _call(ensure_image, eng.client, cfg.docker.base_image, lambda m: typer.echo(m))
    for service in eng.plans:
        if wipe:
            old, new = _call(eng.quarantine, service, time.time())
            typer.echo(f"{service}: journal volume {old} quarantined (kept); now on {new}")
            _call(eng.prune_quarantines, service, cfg.recovery.keep_quarantines)
        elif _call(eng.container, service) is not None:
            _call(eng.restart, service)
            typer.echo(f"{service}: restarted (its journal is repaired at start)")


def image(
    base_image: Optional[str] = typer.Option(None, "--base-image", help="Build FROM this image (default: [docker] base_image)."),
    context: Optional[Path] = typer.Option(None, "--context", help="Only write the build context (Dockerfile + wheels/) "
                                           "into this folder, e.g. compose/, for `docker compose build`."),
    python: str = typer.Option("3.11", "--python", help="With --context: the base image's Python version."),
    arch: str = typer.Option("x86_64", "--arch", help="With --context: the engine's CPU (x86_64 or aarch64)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Build the sandbox image (what `up --docker` does when it is missing or out of date)."""
    from sandbox.config import ConfigError
    from sandbox.runner import wheelhouse
    from sandbox.runner.docker_image import ensure_image

    if context is not None:
        try:
            wheelhouse.write_context(context, python, arch)
        except wheelhouse.WheelhouseError as e:
            fail(str(e))
        n = len(list((context / "wheels").glob("*.whl")))
        typer.echo(f"wrote {context / 'Dockerfile'} and {n} wheels in {context / 'wheels'}")
        return
    base = base_image
    if base is None:
        try:
            base = stack.load_config(config, cwd=Path.cwd()).docker.base_image
        except ConfigError:
            from sandbox.runner.docker import DEFAULT_BASE_IMAGE

            base = DEFAULT_BASE_IMAGE
    from sandbox.runner.docker import connect

    client = _call(connect)
    tag = _call(ensure_image, client, base, lambda m: typer.echo(m))
    typer.echo(f"image {tag} (also tagged kafka-sandbox:latest) is ready")


def register(app: typer.Typer) -> None:
    """Add `sandbox image` to the CLI (the docker mode of the stack commands is called by them)."""
    app.command()(image)
