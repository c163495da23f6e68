"""Dynamic broker configs (KIP-226): Kafka-named broker settings changed while the cluster runs,
with IncrementalAlterConfigs / AlterConfigs on a BROKER resource (type 4): the resource named ""
for every broker (the cluster-wide default), "N" for broker N alone, which wins over the default.
Kept in the coordinator's journal as Kafka's controller keeps them. Pure: validation into journal
records, their application, and what a broker makes of them.

Taken, as Kafka takes them:
- LOG_DEFAULTS, the defaults of topic configs (log.retention.ms for retention.ms, message.max.bytes
  for max.message.bytes, ...): every partition whose topic does not set its own follows them at
  once, on every broker they apply to;
- INERT, settings Kafka changes at run time that have nothing to act on in the sandbox (thread
  pools, Kerberos and SSL settings, connection limits): kept and described, as Kafka would, with
  no effect, since there is no thread pool, Kerberos login or SSL listener to change;
- names Kafka does not know: kept, as Kafka keeps custom ones.
Refused with the sentence Kafka answers (INVALID_REQUEST), plus where the sandbox sets them: the
STATIC ones (broker.id, log.dirs, listeners, the sandbox's own [broker] settings, and the few
Kafka changes at run time that the sandbox takes only per topic or from sandbox.toml)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sandbox.protocol.errors import BROKER_ID_NOT_REGISTERED, INVALID_REQUEST
from sandbox.server_properties import SETTINGS, TOPIC_SYNONYMS

from . import topic_configs
from .model import CoordinatorError

RESOURCE_BROKER = 4
DEFAULT = ""                 # the resource name of the cluster-wide default
SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT = 2, 3

# broker setting -> the topic config it is the default of, for those the sandbox's logs act on
LOG_DEFAULTS: dict[str, str] = {**TOPIC_SYNONYMS, "log.segment.delete.delay.ms": "file.delete.delay.ms",
                                "log.cleaner.min.compaction.lag.ms": "min.compaction.lag.ms"}

_INT = "int"
# name -> (type, Kafka's default) of Kafka's listener settings: per broker only (refused for the
# cluster-wide default, as in Kafka)
_PER_BROKER: dict[str, tuple[str, str]] = {
    "sasl.kerberos.min.time.before.relogin": (_INT, "60000"),
    "sasl.login.refresh.min.period.seconds": (_INT, "60"), "sasl.login.refresh.buffer.seconds": (_INT, "300"),
    "sasl.kerberos.ticket.renew.window.factor": ("double", "0.8"),
    "sasl.kerberos.ticket.renew.jitter": ("double", "0.05"),
    "sasl.login.refresh.window.factor": ("double", "0.8"), "sasl.login.refresh.window.jitter": ("double", "0.05"),
    "sasl.kerberos.kinit.cmd": ("string", "/usr/bin/kinit"), "sasl.kerberos.service.name": ("string", ""),
    "sasl.kerberos.principal.to.local.rules": ("string", "DEFAULT"), "ssl.cipher.suites": ("string", ""),
    "ssl.enabled.protocols": ("string", "TLSv1.2,TLSv1.3"), "ssl.protocol": ("string", "TLSv1.3"),
    "ssl.client.auth": ("string", "none"), "ssl.endpoint.identification.algorithm": ("string", "https"),
}
_LONG_MAX = "9223372036854775807"
INERT: dict[str, tuple[str, str]] = {
    "num.io.threads": (_INT, "8"), "num.network.threads": (_INT, "3"), "num.replica.fetchers": (_INT, "1"),
    "num.recovery.threads.per.data.dir": (_INT, "2"), "background.threads": (_INT, "10"),
    "log.cleaner.threads": (_INT, "1"), "log.cleaner.dedupe.buffer.size": (_INT, "134217728"),
    "log.cleaner.io.buffer.size": (_INT, "524288"), "max.connections": (_INT, "2147483647"),
    "max.connections.per.ip": (_INT, "2147483647"), "max.connection.creation.rate": (_INT, "2147483647"),
    "log.cleaner.io.max.bytes.per.second": ("double", "1.7976931348623157E308"),
    "log.cleaner.io.buffer.load.factor": ("double", "0.9"),
    "max.connections.per.ip.overrides": ("string", ""), "metric.reporters": ("string", ""),
    # topic-config defaults whose topic configs are kept without effect here too (but the two
    # log.message.timestamp.* ones, which Produce reads itself: handlers/k00_produce.py)
    "log.roll.jitter.ms": ("long", "0"), "log.cleaner.max.compaction.lag.ms": ("long", _LONG_MAX),
    "log.message.timestamp.before.max.ms": ("long", _LONG_MAX),
    "log.message.timestamp.after.max.ms": ("long", "3600000"),
    "log.local.retention.ms": ("long", "-2"), "log.local.retention.bytes": ("long", "-2"),
    "log.index.size.max.bytes": (_INT, "10485760"), "log.cleaner.min.cleanable.ratio": ("double", "0.5"),
    "log.preallocate": ("boolean", "false"),
    **_PER_BROKER,
}
DYNAMIC = frozenset(LOG_DEFAULTS) | frozenset(INERT)
# Kafka's defaults of those no [broker] setting shows, so DescribeConfigs lists every dynamic one
# (kafka-python's admin client checks a change against that list)
DEFAULTS: dict[str, str] = {**{k: d for k, (_t, d) in INERT.items()},
                            "log.segment.delete.delay.ms": "60000", "log.cleaner.min.compaction.lag.ms": "0"}
# DescribeConfigs' config_type (1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE) of every dynamic setting
_TYPE_CODES = {_INT: 3, "long": 5, "double": 6, "boolean": 1, "string": 2}
CONFIG_TYPES: dict[str, int] = {**{k: 5 for k in LOG_DEFAULTS},
                                "log.segment.bytes": 3, "log.index.interval.bytes": 3, "message.max.bytes": 3,
                                "log.cleanup.policy": 7, "log.message.timestamp.type": 2,
                                **{k: _TYPE_CODES[t] for k, (t, _d) in INERT.items()}}
SOURCE_DEFAULT = topic_configs.SOURCE_DEFAULT
# Kafka broker settings the sandbox does not change at run time (Kafka: not dynamic at all, or
# dynamic there but acted on here only from sandbox.toml or per topic); any other name is kept
# as Kafka keeps custom ones
_WHY = {
    "min.insync.replicas": "set it per topic, or with [sandbox] min_insync_replicas",
    "unclean.leader.election.enable": "set it per topic",
    "compression.type": "set it per topic",
    "listeners": "the sandbox's ports come from sandbox.toml",
    "advertised.listeners": "the sandbox's ports come from sandbox.toml",
    "listener.security.protocol.map": "the sandbox's listeners come from sandbox.toml",
}
STATIC = frozenset({
    *SETTINGS, *_WHY, "broker.id", "node.id", "log.dir", "log.dirs", "process.roles", "controller.quorum.voters",
    "controller.quorum.bootstrap.servers", "controller.listener.names", "inter.broker.listener.name",
    "log.retention.hours", "log.retention.minutes", "log.roll.hours", "log.cleaner.backoff.ms",
}) - DYNAMIC

Configs = dict[str, dict[str, str]]   # "" or a broker id -> its dynamic settings


def check_name(name: str) -> None:
    """A BROKER resource is "" or a broker id, as Kafka checks it."""
    if name != DEFAULT and not (name.isdigit() and name.isascii()):
        raise CoordinatorError(INVALID_REQUEST, f"Node id must be an integer, but it is: {name}")


def _value(key: str, value: Any) -> str:
    """The value in its canonical form; INVALID_REQUEST as Kafka answers a bad one."""
    if key in LOG_DEFAULTS:
        try:
            text = topic_configs.normalize_value(LOG_DEFAULTS[key], value)
        except CoordinatorError as e:   # the topic config's check, told with the broker's name
            raise CoordinatorError(INVALID_REQUEST, e.message.replace(LOG_DEFAULTS[key], key)) from None
        if key == "log.cleanup.policy" and not text:   # (KAFKA-19112's empty policy is per topic only)
            raise CoordinatorError(INVALID_REQUEST, "Invalid value for configuration log.cleanup.policy: "
                                                    "an empty list is only taken per topic")
        return text
    text = str(value).strip()
    kind = INERT.get(key, ("string", ""))[0]
    try:
        if kind in (_INT, "long"):
            text = str(int(text))
        elif kind == "double":
            text = repr(float(text))
        elif kind == "boolean" and text.lower() not in ("true", "false"):
            raise ValueError
        elif kind == "boolean":
            text = text.lower()
    except ValueError:
        raise CoordinatorError(INVALID_REQUEST, f"Invalid value {value} for configuration {key}: "
                                                f"Not a {'boolean' if kind == 'boolean' else 'number'} of type {kind.upper()}") from None
    return text


def _refused(keys: Iterable[str]) -> CoordinatorError:
    shown = sorted(k for k in keys if not k.startswith("sandbox."))   # no internal keys told
    why = "; ".join(dict.fromkeys(_WHY[k] for k in shown if k in _WHY)) or \
        "the sandbox takes them from sandbox.toml's [broker] section at start"
    return CoordinatorError(INVALID_REQUEST, f"Cannot update these configs dynamically: Set({', '.join(shown)}); {why}")


def alteration(current: Mapping[str, str], name: str, set_: Mapping[str, Any] | None,
               delete: Iterable[str] | None, incremental: bool, brokers: Iterable[int] = ()) -> list[dict]:
    """The journal record of a change of one BROKER resource's dynamic settings (current: its
    settings now). incremental: `set_` applied, then `delete` keys removed; otherwise the
    resource's settings become exactly `set_` (AlterConfigs replaces them, as in Kafka).
    Raises CoordinatorError as Kafka answers. brokers: the registered broker ids."""
    check_name(name)
    if name != DEFAULT and int(name) not in set(brokers):
        raise CoordinatorError(BROKER_ID_NOT_REGISTERED, f"No node with id {name} found.")
    set_ = {str(k): v for k, v in (set_ or {}).items()}
    dropped = [str(k) for k in (delete or ())]
    not_dynamic = {k for k in [*set_, *dropped] if k in STATIC or k.startswith("sandbox.")}
    if not_dynamic:
        raise _refused(not_dynamic)
    per_broker = sorted(k for k in set_ if k in _PER_BROKER)
    if name == DEFAULT and per_broker:
        raise CoordinatorError(INVALID_REQUEST, "Cannot update these configs at default cluster level, broker "
                                                f"id must be specified: Set({', '.join(per_broker)})")
    new = {k: _value(k, v) for k, v in set_.items() if v is not None}
    configs = topic_configs.merged(current, new, dropped, incremental)
    return [{"type": "broker-config", "broker": name, "configs": dict(sorted(configs.items()))}]


def apply(store: Configs, record: Mapping[str, Any]) -> None:
    topic_configs.store(store, str(record["broker"]), record.get("configs"))


def effective(store: Mapping[str, Mapping[str, str]], broker_id: int) -> dict[str, tuple[str, int]]:
    """What is set dynamically for one broker: key -> (value, config source), its own settings
    over the cluster-wide default's."""
    out = {k: (v, SOURCE_DYNAMIC_DEFAULT) for k, v in store.get(DEFAULT, {}).items()}
    out.update({k: (v, SOURCE_DYNAMIC_BROKER) for k, v in store.get(str(broker_id), {}).items()})
    return out


def topic_defaults(store: Mapping[str, Mapping[str, str]], broker_id: int) -> dict[str, tuple[str, int]]:
    """The topic configs one broker's dynamic settings give a default: topic key -> (value, source)."""
    return {LOG_DEFAULTS[k]: vs for k, vs in effective(store, broker_id).items() if k in LOG_DEFAULTS}


def cluster_topic_defaults(store: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The topic-config defaults the cluster-wide dynamic settings give every topic: topic key -> value."""
    return {LOG_DEFAULTS[k]: v for k, v in store.get(DEFAULT, {}).items() if k in LOG_DEFAULTS}
