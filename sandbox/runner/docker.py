"""Docker mode through the Docker SDK: the engine's connection, and one sandbox's network, journal
volumes and labelled containers: creating them from the plan (runner/docker_plan.py), watching,
quarantining a volume, removing them, and the rehearsal actions (kill, pause/unpause). The image is
runner/docker_image.py's, the processes' figures runner/docker_figures.py's."""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.runner.docker_figures import ContainerFigures
from sandbox.runner.docker_plan import (  # noqa: F401  (re-exported: the plan is part of docker mode's API)
    COORDINATOR_PORT, DEFAULT_BASE_IMAGE, EXTERNAL_PORT, IMAGE_REPO, INTERNAL_PORT, JOURNAL_MOUNT, LABEL, PROBE_SCRIPT,
    SASL_PORT,
    SEED_ACLS, ContainerPlan, ContainerState, DockerError, NotHealthyInTime, docker_time, healthcheck, labels, plan,
    prefix, selector, slug, volume_name)
from sandbox.runner.probe import api_versions_round_trip
from sandbox.runner.quarantine import stamp

# ------------------------------------------------------------------ the engine

def connect(timeout: float = 10.0):
    """A docker.DockerClient, or DockerError saying whether Docker is missing or not running."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerError("the Docker SDK for Python is not installed; run `pip install docker`") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except DockerException as e:
        installed = bool(os.environ.get("DOCKER_HOST") or shutil.which("docker") or shutil.which("dockerd")
                         or Path("/var/run/docker.sock").exists() or os.name == "nt")
        if not installed:
            raise DockerError("Docker is not installed (no `docker` command and no engine socket); install "
                              "Docker Desktop (Linux: the docker.io package), or run `sandbox up` without "
                              "--docker for native mode") from None
        why = str(e).split("(", 1)[0].strip().rstrip(":")
        raise DockerError(f"the Docker engine is not running or not reachable ({why}); start Docker Desktop "
                          f"(Linux: `sudo systemctl start docker`) and try again, or run `sandbox up` "
                          f"without --docker") from None


def _not_found():
    from docker.errors import NotFound

    return NotFound


def _engine_errors(what: str):
    """Whatever the engine refuses while doing `what` becomes a DockerError sentence (a CLI prints
    it; the watcher logs it and tries again), never a traceback."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            from docker.errors import DockerException

            try:
                return method(self, *args, **kwargs)
            except DockerException as e:
                why = getattr(e, "explanation", None) or str(e)
                raise DockerError(f"the Docker engine failed to {what} ({why}); see `docker ps -a` "
                                  f"and `sandbox logs`") from None
        return wrapper
    return decorate


class DockerStack:
    """One sandbox's containers, network and volumes on an engine."""

    def __init__(self, cfg: SandboxConfig, client=None, image: str | None = None) -> None:
        self.cfg = cfg
        self.client = client or connect()
        self.image = image
        self.plans = {p.service: p for p in plan(cfg)}
        self.figures = ContainerFigures(self.client)
        self.disconnected: list[str] = []   # containers not the sandbox's that down() took off its network

    # ---- ownership: names come from the sandbox's name (the folder's, by default), so two folders
    # named alike ask for the same containers, volumes and network; the root label tells them apart
    def _refuse_foreign(self, kind: str, name: str, found_labels: dict | None) -> None:
        """DockerError when the engine's `kind` called `name` is not this folder's sandbox's."""
        root = (found_labels or {}).get(f"{LABEL}.root")
        if root == str(self.cfg.root):
            return
        whose = f"the sandbox in {root}" if root else "something that is not a sandbox (no io.kafka-sandbox labels)"
        stop = f"stop that sandbox with `sandbox down` in {root}" if root else f"remove or rename that {kind}"
        raise DockerError(f"the Docker {kind} {name} belongs to {whose}, not to this folder's sandbox "
                          f"{self.cfg.name!r} ({self.cfg.root}); {stop}, or give this sandbox another name "
                          f"(name = \"...\" under [sandbox] in its sandbox.toml, or rename this folder)")

    def _refuse_foreign_container(self, name: str) -> None:
        try:
            c = self.client.containers.get(name)
        except _not_found():
            return
        self._refuse_foreign("container", name, c.labels)

    @_engine_errors("check the sandbox's containers, volumes and network")
    def check_ours(self) -> None:
        """Refuse (DockerError) when a container, journal volume or the network this sandbox would
        use by name is another folder's: never mount its journals nor remove its containers."""
        for p in self.plans.values():
            self._refuse_foreign_container(p.name)
        for service in self.plans:
            if not self.volumes(service):   # ours are found by label; this name would be created
                name = volume_name(self.cfg, service, "0")
                try:
                    self._refuse_foreign("volume", name, self.client.volumes.get(name).attrs.get("Labels"))
                except _not_found():
                    pass
        name = prefix(self.cfg)
        for n in self.client.networks.list(names=[name]):
            if n.name == name:
                self._refuse_foreign("network", name, n.attrs.get("Labels"))

    # ---- creation
    @_engine_errors("create the network")
    def network(self):
        name = prefix(self.cfg)
        # the engine's name filter matches any network whose name CONTAINS the string ("sandbox-shop"
        # finds "sandbox-shop-admin" of another project; Docker docs, `docker network ls --filter
        # name=`: "matches all or part of a network's name"), so only the exact name is ours
        found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        if found:
            self._refuse_foreign("network", name, found[0].attrs.get("Labels"))
            return found[0]
        return self.client.networks.create(name, driver="bridge", labels=labels(self.cfg, kind="network"))

    @_engine_errors("list the journal volumes")
    def volumes(self, service: str) -> list:
        """This service's journal volumes, newest generation last."""
        vols = self.client.volumes.list(filters={"label": selector(self.cfg, service=service, kind="journal")})
        return sorted(vols, key=lambda v: v.attrs.get("Labels", {}).get(f"{LABEL}.generation", "0"))

    def active_volume(self, service: str) -> str:
        vols = self.volumes(service)
        if vols:
            return vols[-1].name
        return self._new_volume(service, "0")

    def _new_volume(self, service: str, generation: str) -> str:
        name = volume_name(self.cfg, service, generation)
        # the engine's volume create returns an existing volume of that name silently (Docker API,
        # VolumeCreate: "if a volume with the same name already exists, it is returned"): another
        # folder's journal would be mounted as ours
        try:
            self._refuse_foreign("volume", name, self.client.volumes.get(name).attrs.get("Labels"))
        except _not_found():
            pass
        self.client.volumes.create(name, labels=labels(self.cfg, service=service, kind="journal",
                                                       generation=generation))
        return name

    @_engine_errors("create a container")
    def create(self, service: str, start: bool = True):
        """The service's container (created if missing), started."""
        from docker.errors import APIError

        p = self.plans[service]
        c = self.container(service)
        if c is not None and (c.attrs.get("State") or {}).get("Paused"):
            # frozen by a `sandbox pause --for` whose watcher ended before its resume time (or by
            # `docker pause`): the engine refuses to start, restart or stop-for-recreate a paused
            # container ("cannot start a paused container, try unpause instead")
            c.unpause()
            c.reload()
        if c is None:   # a container of that name another folder's sandbox runs is never removed
            self._refuse_foreign_container(p.name)   # (network() and _new_volume() check theirs)
        if c is not None and ((self.image and c.attrs.get("Config", {}).get("Image") != self.image)
                              or c.attrs.get("Config", {}).get("Cmd") != p.command or _published(c) != _wanted(p)):
            # built from an older image, or started with other settings or ports (sandbox.toml
            # changed while no watcher ran): re-created on the same journal volume
            c.remove(force=True)
            c = None
        if c is None:
            net = self.network()
            vol = self.active_volume(service)
            endpoint = self.client.api.create_endpoint_config(aliases=p.aliases)
            try:
                c = self.client.containers.create(
                    self.image, p.command, name=p.name, hostname=service, labels=p.labels,
                    ports=p.ports, volumes={vol: {"bind": JOURNAL_MOUNT, "mode": "rw"}},
                    network=net.name, networking_config={net.name: endpoint}, healthcheck=p.healthcheck,
                    restart_policy=p.restart_policy, environment=p.environment, stop_signal="SIGTERM")
            except APIError as e:
                raise DockerError(f"could not create container {p.name}: {e.explanation or e}") from None
            if p.role == "coordinator":
                self._seed_acls(c)
        if start and c.status != "running":
            try:
                c.start()
            except APIError as e:
                raise DockerError(self._start_error(p, e)) from None
        return c

    def _seed_acls(self, c) -> None:
        """The catalog's ACL bindings, cluster id and SCRAM users into a new coordinator container, before it
        starts: on a fresh journal volume (a destroyed journal's replacement) it starts with them
        (--seed-acls)."""
        import io
        import json
        import posixpath   # a path inside the Linux container, whatever the host
        import tarfile

        from sandbox.runner.catalog import saved_acls, saved_cluster_id, saved_scram

        data = json.dumps({"acls": saved_acls(self.cfg), "cluster_id": saved_cluster_id(self.cfg),
                           "scram": saved_scram(self.cfg)}).encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(SEED_ACLS))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        c.put_archive(posixpath.dirname(SEED_ACLS), buf.getvalue())

    @staticmethod
    def _start_error(p: ContainerPlan, e) -> str:
        text = str(getattr(e, "explanation", None) or e)
        if "port is already allocated" in text or "address already in use" in text:
            return (f"port {p.host_port} (for {p.service}) is taken on this machine; stop what holds it or "
                    f"choose other ports in sandbox.toml ([sandbox] port / coordinator_port) or with --port")
        return f"could not start container {p.name}: {text}"

    def up(self) -> list[str]:
        """Create and start the plan's containers; returns the names of the containers removed
        because their service is no longer in the plan (see retire_extra)."""
        self.check_ours()
        retired = self.retire_extra()
        for service in self.plans:   # coordinator first
            self.create(service)
        return retired

    @_engine_errors("remove the containers of services no longer configured")
    def retire_extra(self, timeout: int = 10) -> list[str]:
        """Stop and remove this sandbox's containers whose service the plan no longer has (`brokers`
        lowered): they held ports the new plan may need and kept running, registered with the
        coordinator. Their journal volumes are kept (only `down --purge` deletes journals)."""
        out = []
        for c in self.containers():
            if (c.labels or {}).get(f"{LABEL}.service") in self.plans:
                continue
            _stop_and_remove(c, timeout)
            out.append(c.name)
        return sorted(out)

    # ---- inspection
    @_engine_errors("inspect a container")
    def container(self, service: str):
        """The service's container; None when there is none, or when the one of that name is another
        folder's sandbox's (never stopped, killed or removed from here)."""
        try:
            c = self.client.containers.get(self.plans[service].name)
        except _not_found():
            return None
        return c if (c.labels or {}).get(f"{LABEL}.root") == str(self.cfg.root) else None

    @_engine_errors("list the containers")
    def containers(self) -> list:
        return self.client.containers.list(all=True, filters={"label": selector(self.cfg)})

    @_engine_errors("inspect a container")
    def inspect(self, service: str) -> ContainerState | None:
        c = self.container(service)
        if c is None:
            return None
        st = c.attrs.get("State", {})
        mounts = [m.get("Name") for m in c.attrs.get("Mounts", []) if m.get("Destination") == JOURNAL_MOUNT]
        health = (st.get("Health") or {}).get("Status")
        return ContainerState(service, c.name, st.get("Status", c.status), health,
                              st.get("ExitCode"), int(c.attrs.get("RestartCount", 0)),
                              st.get("StartedAt"), (st.get("Pid") or None) if self.pids_local() else None,
                              mounts[0] if mounts else None, bool(st.get("OOMKilled")))

    def pids_local(self) -> bool:
        return self.figures.pids_local()

    @_engine_errors("list container events")
    def events(self, since: float, until: float) -> list[dict]:
        """die/start/health events of this sandbox's containers between two wall times."""
        evs = self.client.events(since=int(since), until=int(until) + 1, decode=True,
                                 filters={"type": "container", "label": selector(self.cfg)})
        out = []
        for ev in evs:
            attrs = (ev.get("Actor") or {}).get("Attributes", {})
            out.append({"service": attrs.get(f"{LABEL}.service"), "action": ev.get("Action", ""),
                        "exit_code": int(attrs["exitCode"]) if "exitCode" in attrs else None,
                        "signal": attrs.get("signal"),
                        "time_ns": int(ev.get("timeNano", 0)), "id": ev.get("id")})
        return out

    @_engine_errors("read a container's log")
    def logs(self, service: str, since: float | None = None, tail: int | str = "all",
             timestamps: bool = False) -> list[str]:
        """The container's log lines (from `since`, whole seconds); timestamps: each line starts with
        the engine's RFC 3339 time and a space."""
        c = self.container(service)
        if c is None:
            return []
        kw: dict[str, Any] = {"tail": tail}
        if since is not None:
            kw["since"] = int(since)
        if timestamps:
            kw["timestamps"] = True
        return c.logs(**kw).decode("utf-8", errors="replace").splitlines()

    @_engine_errors("follow a container's log")
    def follow_logs(self, service: str, tail: int):
        c = self.container(service)
        if c is None:
            return iter(())
        return c.logs(stream=True, follow=True, tail=tail)

    def measure(self, service: str) -> dict[str, Any]:
        """cpu, memory and open files of the service's process, and its journal volume's size, free
        space and whether it takes a write (runner/docker_figures.py)."""
        return self.figures.measure(self.container(service), service)

    # ---- actions
    def start(self, service: str) -> None:
        self.create(service)

    @_engine_errors("restart a container")
    def restart(self, service: str, timeout: int = 10) -> None:
        c = self.container(service)
        if c is None:
            self.create(service)
        else:
            c.restart(timeout=timeout)

    @_engine_errors("stop a container")
    def stop(self, service: str, timeout: int = 10) -> None:
        c = self.container(service)
        if c is not None:
            c.stop(timeout=timeout)

    @_engine_errors("kill a container")
    def kill(self, service: str) -> None:
        """SIGKILL the container's process (`sandbox kill`); the watcher sees a crash."""
        c = self.container(service)
        if c is not None:
            c.kill()

    @_engine_errors("pause a container")
    def pause(self, service: str) -> None:
        """Freeze every process of the container (the engine's cgroup freezer), for `sandbox pause`."""
        c = self.container(service)
        if c is not None:
            c.pause()

    @_engine_errors("unpause a container")
    def unpause(self, service: str) -> None:
        c = self.container(service)
        if c is not None and c.attrs.get("State", {}).get("Paused"):
            c.unpause()

    @_engine_errors("move a journal to a fresh volume")
    def quarantine(self, service: str, wall: float) -> tuple[str | None, str]:
        """Move the service onto a fresh journal volume; the old one is kept, untouched, as a
        quarantine. Returns (old volume, new volume)."""
        c = self.container(service)
        old = None
        if c is not None:
            old = next((m.get("Name") for m in c.attrs.get("Mounts", []) if m.get("Destination") == JOURNAL_MOUNT), None)
            c.remove(force=True)
        new = self._new_volume(service, stamp(wall))
        self.create(service)
        return old, new

    @_engine_errors("delete old quarantined volumes")
    def prune_quarantines(self, service: str, keep: int) -> list[str]:
        """Delete the oldest quarantined volumes beyond `keep` (the active one is never touched)."""
        old = self.volumes(service)[:-1]
        doomed = old[:max(len(old) - keep, 0)]
        for v in doomed:
            try:
                v.remove()
            except Exception:
                pass
        return [v.name for v in doomed]

    @_engine_errors("remove the sandbox")
    def down(self, purge: bool = False, timeout: int = 10) -> list[str]:
        """Remove the containers (brokers first) and the network; the volumes too with purge."""
        removed = []
        order = sorted(self.containers(), key=lambda c: c.labels.get(f"{LABEL}.role") == "coordinator")
        for c in order:
            _stop_and_remove(c, timeout)
            removed.append(c.name)
        self.disconnected = []
        refused = None
        for net in self.client.networks.list(filters={"label": selector(self.cfg)}):
            # a container that is not the sandbox's (`docker run --network sandbox-NAME ...`, a
            # compose service joined to it) keeps the network in use: the engine refuses to remove
            # it ("has active endpoints", Docker Engine API NetworkDelete 403). It is disconnected
            # (force), as `docker network disconnect -f` does, and keeps running.
            try:
                net.reload()
                attached = list((net.attrs.get("Containers") or {}).items())
            except Exception:
                attached = []
            for cid, info in attached:
                try:
                    net.disconnect(cid, force=True)
                    self.disconnected.append((info or {}).get("Name") or cid[:12])
                except Exception:
                    pass
            try:
                net.remove()
                removed.append(net.name)
            except Exception as e:   # noqa: BLE001 - the volumes are still purged; said after
                refused = (net.name, getattr(e, "explanation", None) or str(e))
        if purge:
            for v in self.client.volumes.list(filters={"label": selector(self.cfg)}):
                v.remove(force=True)
                removed.append(v.name)
        if refused:
            raise DockerError(f"the Docker engine refused to remove the network {refused[0]} ({refused[1]})"
                              + ("; the journal volumes were deleted" if purge else "")
                              + f"; see `docker network inspect {refused[0]}`, then run `sandbox down` again")
        return removed

    @_engine_errors("report the containers' health")
    def wait_healthy(self, timeout: float) -> dict[str, ContainerState]:
        deadline = time.monotonic() + timeout
        while True:   # one round at least, so a timeout spent already still says what it found
            states = {s: st for s in self.plans if (st := self.inspect(s)) is not None}
            # the engine's first healthcheck runs one interval (10 s) after the start: until then
            # ("starting") the same ApiVersions round trip from the host counts
            ok = {s for s, st in states.items() if st.health == "healthy" or (
                st.health == "starting" and st.status == "running"
                and api_versions_round_trip(self.cfg.connect_host, self.plans[s].host_port, 1.0).ok)}
            if len(ok) == len(self.plans) and time.monotonic() <= deadline:
                return states   # a round that ended past the deadline does not count: `up --timeout` holds
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        bad = [f"{s}: {st.status}/{st.health}" for s, st in states.items() if s not in ok]
        bad += [f"{s}: no container" for s in self.plans if s not in states]
        raise NotHealthyInTime("; ".join(bad) or "every container answered, only after the time given")


def _stop_and_remove(c, timeout: int) -> None:
    """Stop a container gracefully (its services write their checkpoints), then remove it; one
    that will not stop is removed by force."""
    try:
        c.stop(timeout=timeout)
    except Exception:
        pass
    c.remove(force=True)


def _published(c) -> dict[str, tuple[str, str]]:
    """A container's published ports: container port -> (host address, host port)."""
    bindings = (c.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return {k: (v[0].get("HostIp", ""), str(v[0].get("HostPort", ""))) for k, v in bindings.items() if v}


def _wanted(p: ContainerPlan) -> dict[str, tuple[str, str]]:
    return {k: (host, str(port)) for k, (host, port) in p.ports.items()}
