"""Docker mode's pure part: the names, labels and ports of one sandbox's containers, network and
journal volumes (a plan computed from sandbox.toml, unit-tested without an engine), what the engine
reports of a container, and the one error type of docker mode. No Docker SDK here."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.runner.options import broker_defaults, coordinator_defaults

LABEL = "io.kafka-sandbox"
IMAGE_REPO = "kafka-sandbox"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
JOURNAL_MOUNT = "/var/lib/sandbox"
# the catalog's ACL bindings, put in the coordinator's container before it starts: a fresh journal
# (a destroyed one's replacement) starts with them (coordinator --seed-acls)
SEED_ACLS = "/tmp/sandbox-seed-acls.json"
COORDINATOR_PORT = 9093     # inside the containers; the host ports come from sandbox.toml
EXTERNAL_PORT = 9092        # clients on the host, through 127.0.0.1:<port>
INTERNAL_PORT = 19092       # clients in other containers on the sandbox's network
SASL_PORT = 9096            # [sasl]: SASL_PLAINTEXT clients on the host, through 127.0.0.1:<sasl port>
_NS = 1_000_000_000


class DockerError(RuntimeError):
    """Docker is missing, stopped or refused something: one sentence with the fix."""


class NotHealthyInTime(Exception):
    """The containers run but did not all become healthy within the time given: no fault of the
    engine (not a DockerError), and they go on starting. `detail` names each one not healthy."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the containers did not become healthy in time ({detail}); see `sandbox logs SERVICE`")
        self.detail = detail


# ------------------------------------------------------------------ the plan (pure, unit-tested)

def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-.") or "sandbox"
    return s[:40]


def prefix(cfg: SandboxConfig) -> str:
    return f"sandbox-{slug(cfg.name)}"


def labels(cfg: SandboxConfig, **extra: str) -> dict[str, str]:
    out = {f"{LABEL}.sandbox": cfg.name, f"{LABEL}.root": str(cfg.root)}
    out.update({f"{LABEL}.{k}": str(v) for k, v in extra.items()})
    return out


def selector(cfg: SandboxConfig, **extra: str) -> list[str]:
    """A label filter for the SDK's list() calls."""
    return [f"{k}={v}" for k, v in labels(cfg, **extra).items()]


# The containers' healthcheck: a Kafka ApiVersions v0 round trip (not a bare port check) with the
# standard library only. `python3 -m sandbox.runner.probe` imported the client and protocol code and
# cost about 0.35 s of CPU a run, every 2 s, per container; this (-I -S: no site, no user paths)
# costs about 0.06 s, a bare interpreter's start, every 10 s.
# Request: int32 size, api_key 18, api_version 0, correlation id 7, client id "hc"; the answer must be
# a whole frame carrying correlation id 7 and error code 0. Exit 0 healthy, 1 not (Docker reference,
# HEALTHCHECK: "0: success, 1: unhealthy"). compose/*.yml carry the same text (a test compares them).
PROBE_SCRIPT = ('import socket,struct,sys;s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),4);'
                's.settimeout(4);q=struct.pack(">hhih",18,0,7,2)+b"hc";s.sendall(struct.pack(">i",len(q))+q);'
                'f=s.makefile("rb");h=f.read(4);n=struct.unpack(">i",h)[0] if len(h)==4 else 0;'
                'r=f.read(n) if 6<=n<1<<20 else b"";'
                'sys.exit(0 if len(r)==n>=6 and struct.unpack(">ih",r[:6])==(7,0) else 1)')
# every 10 s once started; until the first success (start_period), failures do not count. The
# engine's start_interval (a faster cadence while starting) needs Engine API 1.44 and is not passed
# by the Docker SDK 7.1 nor known to docker-compose 1.29, so it is not used: `up` and the watcher
# take their own ApiVersions round trip from the host as healthy while the engine still says
# "starting" (the first engine check runs one interval after the start).
HEALTH_INTERVAL_S = 10


def healthcheck(port: int) -> dict[str, Any]:
    """A Kafka ApiVersions round trip from inside the container (not a bare port check)."""
    return {"test": ["CMD", "python3", "-I", "-S", "-c", PROBE_SCRIPT, str(port)],
            "interval": HEALTH_INTERVAL_S * _NS, "timeout": 5 * _NS, "retries": 3, "start_period": 60 * _NS}


@dataclass
class ContainerPlan:
    service: str
    role: str
    name: str
    command: list[str]
    ports: dict[str, tuple[str, int]]          # container port -> (host address, host port)
    host_port: int
    aliases: list[str]
    labels: dict[str, str]
    healthcheck: dict[str, Any]
    restart_policy: dict[str, Any] = field(default_factory=lambda: {"Name": "unless-stopped"})
    environment: dict[str, str] = field(default_factory=lambda: {"PYTHONUNBUFFERED": "1"})


def sasl_listener(cfg: SandboxConfig, n: int) -> list[str]:
    """[sasl]: broker n's SASL_PLAINTEXT listener, published like EXTERNAL (clients on the host)."""
    if cfg.sasl is None:
        return []
    return ["--listener", f"SASL_PLAINTEXT=0.0.0.0:{SASL_PORT},advertised={cfg.connect_host}:{cfg.sasl_broker_port(n)}"]


def publish_address(host: str) -> str:
    """The address the engine publishes the ports on. It takes an IP address only and reads a
    name ("localhost") as every interface (moby parses it with net.ParseIP), which would open the
    brokers to the network where the user asked for this machine only (found by review): a name is
    resolved here, IPv4 first; one that does not resolve stays on 127.0.0.1. "" and 0.0.0.0 (every
    interface) are the user's own choice and kept."""
    if host in ("", "0.0.0.0", "::"):
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return "127.0.0.1"
    v4 = [info[4][0] for info in found if info[0] == socket.AF_INET]
    return v4[0] if v4 else (found[0][4][0] if found else "127.0.0.1")


def plan(cfg: SandboxConfig) -> list[ContainerPlan]:
    """The containers of a sandbox, coordinator first. Each broker has two listeners: EXTERNAL for
    clients on the host (advertised as the port published on 127.0.0.1) and INTERNAL for clients in
    other containers on the network (advertised as broker-N:19092)."""
    host = publish_address(cfg.host)
    coord = ContainerPlan(
        service="coordinator", role="coordinator", name=f"{prefix(cfg)}-coordinator",
        command=["coordinator", "--host", "0.0.0.0", "--port", str(COORDINATOR_PORT), "--data-dir", JOURNAL_MOUNT,
                 "--seed-acls", SEED_ACLS, *coordinator_defaults(cfg)],
        ports={f"{COORDINATOR_PORT}/tcp": (host, cfg.coordinator_port)}, host_port=cfg.coordinator_port,
        aliases=["coordinator"], labels=labels(cfg, service="coordinator", role="coordinator"),
        healthcheck=healthcheck(COORDINATOR_PORT))
    out = [coord]
    for n in range(1, cfg.brokers + 1):
        svc = f"broker-{n}"
        out.append(ContainerPlan(
            service=svc, role="broker", name=f"{prefix(cfg)}-{svc}",
            command=["broker", "--id", str(n), "--data-dir", JOURNAL_MOUNT,
                     "--coordinator", f"coordinator:{COORDINATOR_PORT}",
                     "--listener", f"EXTERNAL=0.0.0.0:{EXTERNAL_PORT},advertised={cfg.connect_host}:{cfg.broker_port(n)}",
                     "--listener", f"INTERNAL=0.0.0.0:{INTERNAL_PORT},advertised={svc}:{INTERNAL_PORT}",
                     *sasl_listener(cfg, n), *broker_defaults(cfg)],
            ports={f"{EXTERNAL_PORT}/tcp": (host, cfg.broker_port(n)),
                   **({f"{SASL_PORT}/tcp": (host, cfg.sasl_broker_port(n))} if cfg.sasl is not None else {})},
            host_port=cfg.broker_port(n),
            aliases=[svc], labels=labels(cfg, service=svc, role="broker"), healthcheck=healthcheck(EXTERNAL_PORT)))
    return out


def volume_name(cfg: SandboxConfig, service: str, generation: str = "0") -> str:
    base = f"{prefix(cfg)}-{service}"
    return base if generation == "0" else f"{base}-{generation}"


@dataclass
class ContainerState:
    service: str
    container: str
    status: str                 # created, running, restarting, exited, dead, paused, removing
    health: str | None          # starting, healthy, unhealthy (None: no healthcheck)
    exit_code: int | None
    restart_count: int
    started_at: str | None
    pid: int | None             # the main process on this machine's kernel (None when not running, or
                                # when the engine is not a local Linux one: Docker Desktop's is a VM's)
    volume: str | None
    oom_killed: bool = False    # the kernel's OOM killer ended its last run (State.OOMKilled)


def docker_time(text: str) -> float | None:
    """The engine's RFC 3339 time ('2026-11-26T03:10:00.123456789Z') in epoch seconds; None for
    the zero time ('0001-01-01T00:00:00Z', never started) or anything else."""
    try:
        head, _, frac = text.rstrip("Z").partition(".")
        t = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        return None if t <= 0 else t + (float("0." + frac[:6]) if frac else 0.0)
    except ValueError:
        return None
