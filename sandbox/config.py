"""sandbox.toml: schema, defaults, validation with one-sentence errors naming file, line, key and fix.

Also the commented template that `sandbox init` writes. Stdlib only.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox import server_properties
from sandbox.config_acls import parse_acls
from sandbox.config_check import (  # noqa: F401  (ConfigError and FILENAME: part of this module's API)
    FILENAME, ConfigError, _Ctx, _display, _int, _key_text, _show, _unknown, _values,
)

MAX_BROKERS = 16
MODES = ("native", "docker")
ON_CRASH = ("restart", "off")
ON_CORRUPT = ("repair-then-wipe", "repair", "wipe")
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")

# Kafka 4's topic-level config names (what our coordinator accepts); used for "did you mean".
# (key, value) -> why the value is refused, or None: Kafka's rules for one topic config, as the
# coordinator applies them (set by the CLI, which may import them; this module talks to services
# only over the wire). Without it a bad value is found when the topic is created.
topic_config_check: Callable[[str, str], str | None] | None = None

TOPIC_CONFIG_NAMES = frozenset({
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.log.copy.disable",
    "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
})


@dataclass(frozen=True)
class RecoveryConfig:
    on_crash: str = "restart"
    on_corrupt_journal: str = "repair-then-wipe"
    max_restarts: int = 5
    restart_window_s: float = 60
    keep_quarantines: int = 3
    unhealthy_after_s: float = 10


@dataclass(frozen=True)
class DockerConfig:
    base_image: str = "python:3.11-slim"   # what the sandbox image is built FROM


@dataclass(frozen=True)
class SaslConfig:
    """[sasl]: a SASL_PLAINTEXT listener on every broker (broker N on port + N - 1) and the users
    that may log in (name -> password), given SCRAM-SHA-256 and SCRAM-SHA-512 credentials."""
    port: int
    users: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)
    # replica broker ids per partition, where the data already lives (from the topic catalog):
    # a topic re-created after a wipe is placed where its journals are
    assignments: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class SandboxConfig:
    name: str
    root: Path
    path: Path | None = None
    mode: str = "native"
    host: str = "127.0.0.1"
    port: int = 9092
    coordinator_port: int = 9093
    http_port: int = 9094
    brokers: int = 1
    replication: int = 1            # default replication factor of topics: min(3, brokers)
    min_insync_replicas: int = 1    # default min.insync.replicas: 2 with replication >= 3, else 1
    partitions: int = 1             # Kafka's num.partitions: topics created without a count
    data_dir: Path = Path(".sandbox")
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    topics: dict[str, TopicSpec] = field(default_factory=dict)
    # [broker]: Kafka broker settings (server.properties names), checked and normalized
    broker: dict[str, str] = field(default_factory=dict)
    sasl: SaslConfig | None = None   # [sasl]: None = no SASL listener
    acls: tuple = ()                 # [[acls]]: declared ACL bindings in Kafka's codes (config_acls.py)
    raw: dict = field(default_factory=dict, repr=False, compare=False)   # the parsed TOML
    source: str = field(default="", repr=False, compare=False)          # the file's text

    def broker_port(self, n: int) -> int:
        """Kafka port of broker n (1-based)."""
        return self.port + n - 1

    def sasl_broker_port(self, n: int) -> int | None:
        """Broker n's SASL_PLAINTEXT port, None without [sasl]."""
        return None if self.sasl is None else self.sasl.port + n - 1

    @property
    def sasl_port(self) -> int | None:
        return None if self.sasl is None else self.sasl.port

    @property
    def sasl_bootstrap(self) -> str | None:
        """The SASL_PLAINTEXT bootstrap address, None without [sasl]."""
        if self.sasl is None:
            return None
        return ",".join(f"{self.connect_host}:{self.sasl_broker_port(n)}" for n in range(1, self.brokers + 1))

    def broker_names(self) -> list[str]:
        return [f"broker-{n}" for n in range(1, self.brokers + 1)]

    def service_dir(self, name: str) -> Path:
        return self.data_dir / name

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def connect_host(self) -> str:
        """Where a client on this machine reaches the services: `host`, or 127.0.0.1 when they
        listen on every address (0.0.0.0, ::)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{self.broker_port(n)}" for n in range(1, self.brokers + 1))

    def with_overrides(self, **changes: Any) -> "SandboxConfig":
        """A copy with command-line [sandbox] overrides (brokers=3, port=..., None = keep), checked
        as if written in the file; service ports the file did not set follow port + brokers.
        broker=, sasl_port=: the [broker] settings and [sasl] port in place of the file's (what a running
        stack started with; sasl_port=None: no SASL listener)."""
        doc = dict(self.raw)
        if changes.get("broker") is not None:   # the [broker] settings a running stack was started with
            doc["broker"] = dict(changes.pop("broker"))
        changes.pop("broker", None)
        if "sasl_port" in changes:   # the SASL listener a running stack was started with (None: none)
            sasl_port = changes.pop("sasl_port")
            if sasl_port is None:
                doc.pop("sasl", None)
            else:
                doc["sasl"] = {**doc.get("sasl", {}), "port": sasl_port}
        doc["sandbox"] = {**self.raw.get("sandbox", {}), **{k: v for k, v in changes.items() if v is not None}}
        ctx = _Ctx(self.path, self.source, overrides={k for k, v in changes.items() if v is not None})
        return _build(doc, ctx, self.root, self.source)


# ---------------------------------------------------------------------------- schema

# key -> (kind, choices or (low, high), example); kinds: str, choice, int, seconds
_SANDBOX: dict[str, tuple] = {
    "name": ("str", None, "myproject"), "mode": ("choice", MODES, None),
    "host": ("str", None, "127.0.0.1"), "port": ("int", (1, 65535), 9092),
    "coordinator_port": ("int", (1, 65535), 9093), "http_port": ("int", (1, 65535), 9094),
    "brokers": ("int", (1, MAX_BROKERS), 1), "data_dir": ("str", None, ".sandbox"),
    "replication": ("int", (1, MAX_BROKERS), 3), "min_insync_replicas": ("int", (1, MAX_BROKERS), 2),
    "partitions": ("int", (1, server_properties.MAX_TOPIC_PARTITIONS), 4)}
_RECOVERY: dict[str, tuple] = {
    "on_crash": ("choice", ON_CRASH, None), "on_corrupt_journal": ("choice", ON_CORRUPT, None),
    "max_restarts": ("int", (0, None), 5), "restart_window_s": ("seconds", None, 60),
    "keep_quarantines": ("int", (1, None), 3), "unhealthy_after_s": ("seconds", None, 10)}
_DOCKER: dict[str, tuple] = {"base_image": ("str", None, "python:3.11-slim")}
_TOPIC_KEYS = ("partitions", "replication", "config")
_SASL_KEYS = ("port", "users")
# where a key written outside any section belongs (a first guess; [sandbox] wins)
_HOMES = (("sandbox", _SANDBOX), ("recovery", _RECOVERY), ("docker", _DOCKER))
SECTIONS = ("sandbox", "recovery", "docker", "broker", "sasl", "topics", "acls")


# ---------------------------------------------------------------------------- parsing

def parse_config(text: str, path: Path | None = None, *, cwd: Path | None = None) -> SandboxConfig:
    """Parse and validate sandbox.toml text; `path` names the file (and its folder is the root)."""
    ctx = _Ctx(path, text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        reason = re.sub(r"\s*\(at .*?\)", "", msg).rstrip(".")
        col = f" at column {m.group(2)}" if m else ""
        said = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
        closed = re.match(r"^\s*\[.*\]\s*(#.*)?$", said) is not None   # "[sandbox" is a header cut short
        if reason.startswith("Cannot overwrite a value") or (reason.startswith("Cannot declare") and closed):
            fix = "a key or a [table] is given twice: keep one of them"
        else:
            fix = "fix the syntax on that line (strings need quotes, tables [like.this])"
        raise ConfigError(f"{ctx.where(line)}: is not valid TOML ({reason}{col}); {fix}.",
                          path=path, line=line) from None
    root = (path.parent if path else (cwd or Path.cwd())).absolute()
    return _build(doc, ctx, root, text)


def _build(doc: dict, ctx: _Ctx, root: Path, text: str) -> SandboxConfig:
    for k in doc:
        if k not in SECTIONS:
            home = [name for name, keys in _HOMES if k in keys]
            if home and not isinstance(doc[k], dict):   # `brokers = 3` above every section header
                raise ctx.fail((k,), f"{k} = {_show(doc[k])} is outside any section; it belongs in "
                                     f"[{home[0]}]: put a line [{home[0]}] above it.")
            raise _unknown(ctx, (), k, SECTIONS, "section")
    sb = _values(ctx, doc, "sandbox", _SANDBOX)
    kw = dict(sb)
    host = kw.get("host", "127.0.0.1")
    if any(c.isspace() for c in host) or "/" in host:
        raise ctx.fail(("sandbox", "host"), f'[sandbox] host = {_show(host)} is not a host name '
                                            f'or address; set host = "127.0.0.1".')
    data_dir = Path(kw.get("data_dir", ".sandbox")).expanduser()
    kw["data_dir"] = data_dir if data_dir.is_absolute() else root / data_dir
    if _holds(kw["data_dir"], root) or _holds(kw["data_dir"], Path.home()):
        raise ctx.fail(("sandbox", "data_dir"), f'[sandbox] data_dir = {_show(sb.get("data_dir", ".sandbox"))} is the '
                                                f'project folder, your home folder or a folder above them: the '
                                                f'journals would sit among your files (and `sandbox down --purge` '
                                                f'deletes the data folder); set data_dir = ".sandbox".')
    kw.setdefault("name", root.name or "sandbox")
    brokers, port = kw.get("brokers", 1), kw.get("port", 9092)
    # implicit service ports: the coordinator's follows the broker ports (so `brokers = 3` alone
    # never collides), the health endpoint's the coordinator's (SPEC: coordinator_port + 1); the
    # next free port up, else down from the broker ports (never a wrap round to port 1)
    taken = set(range(port, port + brokers)) | {kw.get("coordinator_port"), kw.get("http_port")}
    for k, after in (("coordinator_port", port + brokers - 1), ("http_port", None)):
        if k not in kw:
            start = kw["coordinator_port"] if after is None else after
            kw[k] = p = next((p for p in [*range(start + 1, 65536), *range(min(start, port) - 1, 1023, -1)]
                              if p not in taken), 65535)
            taken.add(p)
    kw["replication"], kw["min_insync_replicas"] = _replication_defaults(ctx, kw, brokers)
    recovery = RecoveryConfig(**_values(ctx, doc, "recovery", _RECOVERY))
    docker = DockerConfig(**_values(ctx, doc, "docker", _DOCKER))
    topics = doc.get("topics", {})
    if not isinstance(topics, dict):
        raise ctx.fail(("topics",), f"topics = {_show(topics)} must be a table; write it as "
                                    f"[topics.NAME] sections.")
    cfg = SandboxConfig(path=ctx.path, root=root, recovery=recovery, docker=docker, raw=doc, source=text,
                        broker=_broker(ctx, doc.get("broker", {})), sasl=_sasl(ctx, doc, taken, port, brokers),
                        acls=parse_acls(ctx, doc),
                        topics={n: _topic(ctx, n, t, brokers, kw["replication"], kw.get("partitions", 1))
                                for n, t in topics.items()}, **kw)
    if cfg.acls and cfg.broker.get("authorizer.class.name") == "":
        raise ctx.fail(("acls",), "[[acls]] needs the brokers' authorizer, and [broker] authorizer.class.name = \"\" "
                                  "turns it off; remove that setting or the [[acls]] sections.")
    _check_ports(cfg, ctx, set(sb))
    return cfg


def _holds(folder: Path, inner: Path) -> bool:
    """True when `folder` is `inner` or one of the folders above it."""
    try:
        f, i = Path(os.path.abspath(folder)), Path(os.path.abspath(inner))
    except (OSError, ValueError):
        return False
    return f == i or f in i.parents


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """{"log": {"retention": {"hours": 1}}} -> {"log.retention.hours": 1}: an unquoted dotted key
    in TOML makes nested tables, a quoted one does not; both mean the same Kafka setting."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _broker(ctx: _Ctx, sec: Any) -> dict[str, str]:
    """[broker]: Kafka broker settings under server.properties names, checked as the broker would."""
    T = ("broker",)
    if not isinstance(sec, dict):
        raise ctx.fail(T, f"broker = {_show(sec)} must be a table; write it as a [broker] section.")
    known = tuple(k for k in server_properties.SETTINGS if k not in server_properties.FROM_SANDBOX_SECTION)
    for key, v in _flatten(sec).items():
        if key in server_properties.FROM_SANDBOX_SECTION:
            instead = server_properties.FROM_SANDBOX_SECTION[key]
            raise ctx.fail(T + (key,), f"[broker] {_key_text(key)} is set by [sandbox] {instead} "
                                       f"(the coordinator applies it to every broker); set "
                                       f"{instead} there instead.")
        if key in server_properties.PLACED_BY_SANDBOX:
            raise ctx.fail(T + (key,), f"[broker] {_key_text(key)} is not set here: "
                                       f"{server_properties.PLACED_BY_SANDBOX[key]}; remove the line.")
        if key not in known:
            raise _unknown(ctx, T, key, known, "broker setting")
        if isinstance(v, (list, float)) or not isinstance(v, (str, int, bool)):
            raise ctx.fail(T + (key,), f"[broker] {_key_text(key)} = {_show(v)} must be a string, "
                                       f"a whole number or true/false.")
        try:
            server_properties.check(key, server_properties.value_text(v))
        except ValueError as e:
            raise ctx.fail(T + (key,), f"[broker] {e}; fix the value or remove the line.") from None
    try:
        return server_properties.normalize(_flatten(sec))
    except ValueError as e:   # settings that contradict each other
        raise ctx.fail(T, f"[broker] {e}; fix one of them.") from None


def _sasl(ctx: _Ctx, doc: dict, taken: set, port: int, brokers: int) -> SaslConfig | None:
    """[sasl]: port (default: the first `brokers` free ports after the stack's others) and users."""
    if "sasl" not in doc:
        return None
    T = ("sasl",)
    taken = {p for p in taken if isinstance(p, int)}
    sec = doc["sasl"]
    if not isinstance(sec, dict):
        raise ctx.fail(T, f"sasl = {_show(sec)} must be a table; write it as a [sasl] section.")
    for k in sec:
        if k not in _SASL_KEYS:
            raise _unknown(ctx, T, k, _SASL_KEYS)
    if "port" in sec:
        first = _int(ctx, T, "port", sec["port"], 1, 65535, 9096)
        if first + brokers - 1 > 65535:
            raise ctx.fail(T + ("port",), f"[sasl] port = {first} with brokers = {brokers} puts broker "
                                          f"{brokers}'s SASL listener above 65535; set a lower port.")
        clash = sorted(set(range(first, first + brokers)) & taken)
        if clash:
            raise ctx.fail(T + ("port",), f"[sasl] port = {first} gives broker N's SASL listener port + N - 1, "
                                          f"and port {clash[0]} is already the stack's (broker, coordinator or "
                                          f"HTTP port); set port = {max(taken) + 1}.")
    else:
        first = next((p for p in range(port + brokers, 65537 - brokers) if not set(range(p, p + brokers)) & taken),
                     None)
        if first is None:
            raise ctx.fail(T, f"[sasl] has no room for {brokers} SASL port(s) above [sandbox] port = {port}; "
                              f"set [sasl] port to a free port below it.")
    users = sec.get("users", {})
    if not isinstance(users, dict):
        raise ctx.fail(T + ("users",), f"[sasl] users = {_show(users)} must be a table of names and "
                                       f'passwords; write users = {{ alice = "alice-secret" }}.')
    for name, password in users.items():
        if not name:
            raise ctx.fail(T + ("users",), '[sasl] users has an empty user name; name each user, e.g. '
                                           'users = { alice = "alice-secret" }.')
        if not isinstance(password, str) or not password:
            raise ctx.fail(T + ("users", name), f"[sasl] users {_key_text(name)} = {_show(password)} must be a "
                                                f'password in quotes; write {_key_text(name)} = "a-password".')
    return SaslConfig(port=first, users=dict(users))


def default_min_insync(replication: int) -> int:
    """The sandbox's min.insync.replicas for a replication factor: 2 from 3 replicas on (one broker
    may be lost without refusing acks=all writes), else 1 (nothing changes on a small stack)."""
    return 2 if replication >= 3 else 1


def _replication_defaults(ctx: _Ctx, kw: dict, brokers: int) -> tuple[int, int]:
    """[sandbox] replication (default min(3, brokers)) and min_insync_replicas, checked."""
    S = ("sandbox",)
    replication = kw.get("replication", min(3, brokers))
    if replication > brokers:
        raise ctx.fail(S + ("replication",), f"[sandbox] replication = {replication} is more than "
                       f"the {brokers} broker(s) of the stack; set replication = {brokers} or raise "
                       f"brokers.")
    min_isr = kw.get("min_insync_replicas", default_min_insync(replication))
    if min_isr > replication:
        raise ctx.fail(S + ("min_insync_replicas",), f"[sandbox] min_insync_replicas = {min_isr} is "
                       f"more than replication = {replication}, so no acks=all write could succeed; "
                       f"set min_insync_replicas = {replication} or less.")
    return replication, min_isr


def _topic(ctx: _Ctx, name: str, spec: Any, brokers: int, default_replication: int = 1,
           default_partitions: int = 1) -> TopicSpec:
    T = ("topics", name)
    if name in (".", "..") or not TOPIC_NAME.fullmatch(name):
        raise ctx.fail(T, f"[topics] {_show(name)} is not a valid Kafka topic name; use 1 to 249 "
                          f"letters, digits, '.', '_' or '-' (and not \".\" or \"..\").")
    if not isinstance(spec, dict):
        raise ctx.fail(T, f"[topics] {_key_text(name)} = {_show(spec)} must be a table; write it "
                          f"as [topics.{_key_text(name)}] with partitions = N.")
    for k, v in spec.items():
        if k not in _TOPIC_KEYS:
            if isinstance(v, dict) and k != "config":
                raise ctx.fail(T + (k,), f"{ctx.table(T)} has a nested table {_key_text(k)}; a "
                                         f"topic name with dots must be quoted, e.g. "
                                         f'[topics."{name}.{k}"].')
            raise _unknown(ctx, T, k, _TOPIC_KEYS)
    partitions = _int(ctx, T, "partitions", spec["partitions"], 1, server_properties.MAX_TOPIC_PARTITIONS, 3) \
        if "partitions" in spec else default_partitions
    replication = default_replication
    if "replication" in spec:
        replication = _int(ctx, T, "replication", spec["replication"], 1, None, 1)
        if replication > brokers:
            if "brokers" in ctx.overrides:   # the command line's count, not the file's
                raise ctx.fail(T + ("replication",), f"{ctx.table(T)} replication = {replication} is "
                               f"more than the {brokers} broker(s) of --brokers {brokers}; run with "
                               f"--brokers {replication} or more, or set replication = {brokers}.")
            raise ctx.fail(T + ("replication",), f"{ctx.table(T)} replication = {replication} is "
                           f"more than the {brokers} broker(s) of [sandbox] brokers; set "
                           f"replication = {brokers} or raise brokers.")
    conf = spec.get("config", {})
    if not isinstance(conf, dict):
        raise ctx.fail(T + ("config",), f"{ctx.table(T)} config = {_show(conf)} must be a table; "
                       f'write config = {{ "retention.ms" = "604800000" }}.')
    out: dict[str, str] = {}
    for k, v in conf.items():
        if k not in TOPIC_CONFIG_NAMES:
            raise _unknown(ctx, T + ("config",), k, TOPIC_CONFIG_NAMES, "topic config")
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ctx.fail(T + ("config", k), f"{ctx.table(T)} config {_show(k)} = {_show(v)} "
                           f"must be a string or a number; write it in quotes, e.g. "
                           f'{_show(k)} = "{_show(v).strip(chr(34))}".')
        out[k] = v if isinstance(v, str) else str(v)
        why = topic_config_check(k, out[k]) if topic_config_check is not None else None
        if why:
            raise ctx.fail(T + ("config", k), f"{ctx.table(T)} config {_show(k)} = {_show(conf[k])}: {why}; "
                           f"fix the value (docs/configuration.md lists each config's values).")
    isr = out.get("min.insync.replicas", "").strip()
    if isr.isdigit() and int(isr) > replication:
        raise ctx.fail(T + ("config", "min.insync.replicas"), f"{ctx.table(T)} config "
                       f'"min.insync.replicas" = {isr} is more than its replication = {replication}, '
                       f"so no acks=all write could succeed; set it to {replication} or less.")
    return TopicSpec(name=name, partitions=partitions, replication=replication, config=out)


def _check_ports(cfg: SandboxConfig, ctx: _Ctx, explicit: set[str]) -> None:
    S = ("sandbox",)
    last = cfg.broker_port(cfg.brokers)
    if last > 65535:
        raise ctx.fail(S + ("brokers" if "brokers" in explicit else "port",),
                       f"[sandbox] port = {cfg.port} with brokers = {cfg.brokers} puts broker "
                       f"{cfg.brokers} on port {last}, above 65535; set a lower port.")
    brokers = range(cfg.port, last + 1)
    for k in ("coordinator_port", "http_port"):
        v = getattr(cfg, k)
        if v in brokers:
            n = v - cfg.port + 1
            o = "http_port" if k == "coordinator_port" else "coordinator_port"
            other = getattr(cfg, o) if o in explicit else None   # an implicit one moves along
            free = next(q for q in range(last + 1, last + 4) if q != other)   # not the other service's either
            raise ctx.fail(S + (k,), f"[sandbox] {k} = {v} collides with broker-{n}'s port "
                           f"(port + {n - 1}); set {k} = {free} or any port outside {cfg.port}-{last}.")
    if cfg.coordinator_port == cfg.http_port:
        raise ctx.fail(S + ("http_port",), f"[sandbox] http_port = {cfg.http_port} is the same as "
                       f"coordinator_port; set http_port = {cfg.coordinator_port + 1}.")


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> SandboxConfig:
    """Load sandbox.toml: `path`, else <cwd>/sandbox.toml if it exists, else all defaults."""
    cwd = (cwd or Path.cwd()).absolute()
    if path is None:
        candidate = cwd / FILENAME
        if candidate.is_dir() or (candidate.is_symlink() and not candidate.exists()):
            # not silently the defaults (port 9092): that is some other sandbox, or none
            what = "a folder" if candidate.is_dir() else "a link to a file that does not exist"
            raise ConfigError(f"{_display(candidate)}: is {what}, not a file; remove it, then run "
                              f"`sandbox init` to write one.", path=candidate)
        if not candidate.is_file():
            return parse_config("", None, cwd=cwd)
        path = candidate
    path = Path(path)
    if not path.is_absolute():
        path = cwd / path
    try:
        text = path.read_bytes().decode("utf-8-sig")  # Notepad may add a BOM
    except FileNotFoundError:
        raise ConfigError(f"{_display(path)}: no such file; check the --config path or run "
                          f"`sandbox init` to write one.", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{_display(path)}: is not UTF-8 text; save it as UTF-8.",
                          path=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{_display(path)}: is a folder, not a file; give the path of a "
                          f"sandbox.toml.", path=path) from None
    except OSError as e:
        raise ConfigError(f"{_display(path)}: cannot be read ({e.strerror}); check its "
                          f"permissions.", path=path) from None
    return parse_config(text, path)
