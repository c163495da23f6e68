"""Kafka topic configs the coordinator accepts: their names, Kafka's defaults and value checks.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Mapping

from sandbox.protocol.errors import INVALID_CONFIG, INVALID_REQUEST, NONE, UNKNOWN_TOPIC_OR_PARTITION
from .model import CoordinatorError
from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID

log = logging.getLogger("sandbox.coordinator")

LONG_MAX = str(2**63 - 1)

# name -> Kafka 4's default value (as DescribeConfigs reports it): LogConfig's topic configs.
# Kafka 4.0 removed message.downconversion.enable and message.timestamp.difference.max.ms
# (KIP-724, KIP-937): refused as unknown names, as Kafka refuses them.
DEFAULTS: dict[str, str] = {
    "cleanup.policy": "delete",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.type": "producer",
    "compression.zstd.level": "3",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": LONG_MAX,
    "flush.ms": LONG_MAX,
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": LONG_MAX,
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",   # KIP-1030: one hour ahead at most
    "message.timestamp.before.max.ms": LONG_MAX,
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}

# Deprecated topic configs that Kafka 3.x still accepts: taken (any value) and ignored, with a log
# line, so tools and scripts written for 3.x keep working. name -> why it does nothing here.
DEPRECATED_IGNORED: dict[str, str] = {
    "message.format.version": "every record batch here is message format v2 (Kafka 4.0 removed it, KIP-724)",
}

# integer configs -> (smallest, largest) accepted value: Kafka's INT configs are Java ints, its
# LONG ones longs; None = no bound but the type's (retention.bytes: any negative is unlimited).
# segment.bytes' smallest is 14, not Kafka 4.0's 1 MiB (KIP-1030), on purpose: small segments let
# compaction be rehearsed with a few records (docs/configuration.md)
INT_MAX, LONG_MAX_VALUE = 2**31 - 1, 2**63 - 1
_INTS: frozenset[str] = frozenset({
    "segment.bytes", "segment.index.bytes", "index.interval.bytes", "max.message.bytes", "min.insync.replicas",
    "compression.gzip.level", "compression.lz4.level", "compression.zstd.level"})
_INT_MIN: dict[str, int | None] = {
    "delete.retention.ms": 0, "file.delete.delay.ms": 0, "flush.messages": 1, "flush.ms": 0,
    "index.interval.bytes": 0, "max.compaction.lag.ms": 1, "max.message.bytes": 0,
    "message.timestamp.before.max.ms": 0, "message.timestamp.after.max.ms": 0, "min.compaction.lag.ms": 0,
    "min.insync.replicas": 1, "retention.bytes": None, "retention.ms": -1,
    "local.retention.bytes": -2, "local.retention.ms": -2, "segment.bytes": 14,
    "segment.index.bytes": 4, "segment.jitter.ms": 0, "segment.ms": 1,
    "compression.lz4.level": 1, "compression.zstd.level": -131072,
}
_INT_MAX: dict[str, int] = {"compression.lz4.level": 17, "compression.zstd.level": 22}
_BOOLEANS = {"preallocate", "unclean.leader.election.enable", "remote.storage.enable",
             "remote.log.copy.disable", "remote.log.delete.on.disable"}
_THROTTLED = {"leader.replication.throttled.replicas", "follower.replication.throttled.replicas"}
_CHOICES: dict[str, frozenset[str]] = {
    "cleanup.policy": frozenset({"delete", "compact"}),   # or a list of both
    "message.timestamp.type": frozenset({"CreateTime", "LogAppendTime"}),
    "compression.type": frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip",
                                   "producer"}),
}


def _bad(key: str, value: object, why: str) -> CoordinatorError:
    return CoordinatorError(INVALID_CONFIG, f"Invalid value {value!r} for configuration {key}: {why}")


def _integer(key: str, value: str, text: str) -> str:
    """An INT or LONG config's value, checked as Kafka's ConfigDef parses and validates it."""
    kind, top = ("INT", INT_MAX) if key in _INTS else ("LONG", LONG_MAX_VALUE)
    try:
        number = int(text)
    except ValueError:
        raise _bad(key, value, f"Not a number of type {kind}") from None
    if not -top - 1 <= number <= top:
        raise _bad(key, value, f"Not a number of type {kind}")
    if key == "compression.gzip.level":   # Deflater: 1..9, or -1 for zlib's own default
        if number != -1 and not 1 <= number <= 9:
            raise _bad(key, value, "Value must be between 1 and 9 or equal to -1")
        return str(number)
    low, high = _INT_MIN[key], _INT_MAX.get(key)
    if high is not None and not low <= number <= high:   # type: ignore[operator]
        raise _bad(key, value, f"Value must be no less than {low} and no greater than {high}")
    if low is not None and number < low:
        raise _bad(key, value, f"Value must be at least {low}")
    return str(number)


def _throttled(key: str, value: str, text: str) -> str:
    """Kafka's ThrottledReplicaListValidator: "*", or partition:broker pairs, comma-separated."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts == ["*"] or all(len(pair := p.split(":")) == 2 and all(x.strip().isdigit() for x in pair)
                             for p in parts):
        return ",".join(parts)
    raise _bad(key, value, "must be the literal '*' or a list of replicas in the following format: "
                           "[partitionId]:[brokerId],[partitionId]:[brokerId],...")


def normalize_value(key: str, value: object) -> str:
    """Check one topic config; return its canonical string form or raise INVALID_CONFIG."""
    if key not in DEFAULTS:
        raise CoordinatorError(INVALID_CONFIG, f"Unknown topic config name: {key}")
    if not isinstance(value, str):
        raise _bad(key, value, "value must be a string")
    text = value.strip()
    if key in _INT_MIN or key == "compression.gzip.level":
        return _integer(key, value, text)
    if key in _BOOLEANS:
        if text.lower() not in ("true", "false"):
            raise _bad(key, value, "must be true or false")
        return text.lower()
    if key in _THROTTLED:
        return _throttled(key, value, text)
    if key == "min.cleanable.dirty.ratio":
        try:
            ratio = float(text)
        except ValueError:
            raise _bad(key, value, "must be a number") from None
        if not 0.0 <= ratio <= 1.0:
            raise _bad(key, value, "must be between 0 and 1")
        return text
    if key == "cleanup.policy":
        # a list kept in the order given (Kafka describes "delete,compact" as written), once each
        parts = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        text = ",".join(parts)
        if not text:   # KAFKA-19112: no policy = keep everything, compact nothing
            return text
        if all(p in ("delete", "compact") for p in parts):
            return text
    if text not in _CHOICES[key]:
        raise _bad(key, value, "must be one of " + ", ".join(sorted(_CHOICES[key])))
    return text


def check_combination(configs: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> None:
    """What Kafka's LogConfig.validateValues checks across a topic's configs (its own over the
    defaults): min.compaction.lag.ms may not exceed max.compaction.lag.ms."""
    effective = {**DEFAULTS, **(defaults or {}), **configs}
    low, high = int(effective["min.compaction.lag.ms"]), int(effective["max.compaction.lag.ms"])
    if low > high:
        raise CoordinatorError(INVALID_CONFIG, f"conflict topic config setting min.compaction.lag.ms ({low}) > "
                                               f"max.compaction.lag.ms ({high})")


# Not a topic config (sandbox.protocol.extensions): the first leader epoch of a topic the
# supervisor re-creates after the coordinator's journal was destroyed. Clients keep a partition's
# leader epoch and ignore metadata with an older one; a topic re-created at epoch 0 would have
# left producers waiting for a leader they refuse to believe.


def take_first_epoch(configs: Mapping[str, object] | None) -> tuple[dict, int]:
    """(the configs without the restore key, the first leader epoch it asks for, else 0)."""
    rest = dict(configs or {})
    value = rest.pop(RESTORE_LEADER_EPOCH, None)
    if value is None:
        return rest, 0
    try:
        epoch = int(str(value))
    except ValueError:
        raise _bad(RESTORE_LEADER_EPOCH, value, "not a number") from None
    if not 0 <= epoch < 1 << 30:
        raise _bad(RESTORE_LEADER_EPOCH, value, "outside 0..2^30")
    return rest, epoch


def take_topic_id(configs: Mapping[str, object] | None) -> tuple[dict, uuid.UUID | None]:
    """(the configs without the restore key, the topic id it asks for, else None)."""
    rest = dict(configs or {})
    value = rest.pop(RESTORE_TOPIC_ID, None)
    if value is None:
        return rest, None
    try:
        topic_id = uuid.UUID(str(value))
    except ValueError:
        raise _bad(RESTORE_TOPIC_ID, value, "not a topic id") from None
    if topic_id.int == 0:
        raise _bad(RESTORE_TOPIC_ID, value, "the zero id means no topic")
    return rest, topic_id


def validate(configs: Mapping[str, object] | None) -> dict[str, str]:
    """Validate a whole set of topic configs; None values (= use the default) are dropped."""
    out: dict[str, str] = {}
    for key, value in (configs or {}).items():
        if str(key) in DEPRECATED_IGNORED:
            log.warning("topic config %s=%s is deprecated and ignored: %s", key, value,
                        DEPRECATED_IGNORED[str(key)])
            continue
        if value is None:
            continue
        out[str(key)] = normalize_value(str(key), value)
    return out


def merged(current: Mapping[str, str], new: Mapping[str, str], dropped: list[str],
           incremental: bool) -> dict[str, str]:
    """A resource's configs after a change, as Kafka makes it: incremental, `new` over `current`
    and then `dropped` removed; otherwise (AlterConfigs) exactly `new`. Raises INVALID_REQUEST for
    a key both set and deleted, or a delete in a non-incremental change."""
    for key in dropped:
        if key in new:
            raise CoordinatorError(INVALID_REQUEST, f"Config {key} is both set and deleted")
    if not incremental:
        if dropped:
            raise CoordinatorError(INVALID_REQUEST, "delete is only meaningful for incremental changes")
        return dict(new)
    configs = {**current, **new}
    for key in dropped:
        configs.pop(key, None)
    return configs


def store(configs_by_key: dict[str, dict[str, str]], key: str, configs: Mapping[str, Any]) -> None:
    """Apply a journal record's whole configs of one resource (none left: the resource is dropped)."""
    values = {str(k): str(v) for k, v in (configs or {}).items()}
    if values:
        configs_by_key[key] = values
    else:
        configs_by_key.pop(key, None)


def default_min_insync(stack_default: int, configs: Mapping[str, str],
                       replica_lists: list[list[int]]) -> dict[str, str]:
    """The min.insync.replicas a new topic gets from the stack's default (sandbox.toml), capped at
    its replication factor so acks=all stays possible; {} when the topic sets its own or it is 1."""
    if "min.insync.replicas" in configs or not replica_lists:
        return {}
    value = min(stack_default, len(replica_lists[0]))
    return {"min.insync.replicas": str(value)} if value > 1 else {}


def incremental_ops(current: dict[str, str], ops, resource_type: int = 2) -> tuple[dict[str, str], list[str]]:
    """IncrementalAlterConfigs semantics: ops are (name, operation, value) with SET 0, DELETE 1,
    APPEND 2, SUBTRACT 3 (list values, comma-separated); returns (set, delete) for alter_configs.
    Refused as Kafka's ConfigAdminManager refuses them (CoordinatorError): a key named twice or an
    unknown operation (INVALID_REQUEST), APPEND or SUBTRACT on a key that is not a list
    (INVALID_CONFIG)."""
    set_: dict[str, str] = {}
    delete: list[str] = []
    names = [name for name, _op, _value in ops]
    if len(names) != len(set(names)):
        raise CoordinatorError(INVALID_REQUEST, "Error due to duplicate config keys")
    for name, op, value in ops:
        if op in (0, 2, 3) and value is None:
            raise CoordinatorError(INVALID_REQUEST, f"Null value not supported for: {name}")
        if op == 0:
            set_[name] = value
        elif op == 1:
            delete.append(name)
        elif op in (2, 3):
            if _config_type(resource_type, name) != 7:
                raise CoordinatorError(INVALID_CONFIG, f"Config value {'append' if op == 2 else 'subtract'} "
                                                       f"is not allowed for config key: {name}")
            items = [x for x in (current.get(name) or "").split(",") if x]
            vals = [x for x in (value or "").split(",") if x]
            items = items + [v for v in vals if v not in items] if op == 2 else [x for x in items if x not in vals]
            set_[name] = ",".join(items)
        else:
            raise CoordinatorError(INVALID_REQUEST, f"Unknown operation type {op} for config key {name}")
    return set_, delete


# DescribeConfigs: resource types, config sources, and config_type (v3+: 1 BOOLEAN, 2 STRING,
# 3 INT, 5 LONG, 6 DOUBLE, 7 LIST); one answer shape for the broker's and the coordinator's handler
RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP = 2, 4, 32
SOURCE_DYNAMIC_TOPIC, SOURCE_STATIC_BROKER, SOURCE_DEFAULT, SOURCE_GROUP = 1, 4, 5, 8
_CONFIG_TYPES = {"cleanup.policy": 7, "compression.type": 2, "message.timestamp.type": 2,
                 **{k: 1 for k in _BOOLEANS}, **{k: 3 for k in _INTS}, **{k: 7 for k in _THROTTLED},
                 "min.cleanable.dirty.ratio": 6,
                 # broker resource
                 "listeners": 7, "advertised.listeners": 7, "listener.security.protocol.map": 7,
                 "process.roles": 7, "log.dirs": 7, "log.cleanup.policy": 7, "broker.id": 3,
                 "node.id": 3, "num.partitions": 3, "default.replication.factor": 3,
                 "offsets.topic.replication.factor": 4, "transaction.state.log.replication.factor": 4,
                 "socket.request.max.bytes": 3, "message.max.bytes": 3, "log.segment.bytes": 3,
                 "log.index.interval.bytes": 3, "group.initial.rebalance.delay.ms": 3,
                 "auto.create.topics.enable": 1, "delete.topic.enable": 1}


def _config_type(resource_type: int, key: str) -> int:
    if resource_type == RESOURCE_GROUP:   # Kafka's GroupConfig: INT, but for the reset strategy
        return 2 if key.endswith(".reset") else 3
    return _CONFIG_TYPES.get(key, 5 if key.endswith((".ms", ".bytes", ".messages")) else 2)


def describe_resource(resource_type: int, name: str, keys, *,
                      topic_configs: dict[str, tuple[str, bool]] | None,
                      server_configs: dict[str, str],
                      group_configs: dict[str, tuple[str, bool]] | None = None,
                      broker_defaults: dict[str, str] | None = None,
                      dynamic: dict[str, tuple[str, int]] | None = None,
                      writable: Mapping[str, int] | None = None) -> dict:
    """One DescribeConfigs result. topic_configs: (value, is_default) per key, None = no such topic;
    server_configs: the answering server's own read-only settings (BROKER resource);
    group_configs: (value, is_default) per key of a GROUP resource; broker_defaults: what a topic
    config the topic does not set is on this server where that is not Kafka's default (its
    STATIC_BROKER_CONFIG, e.g. retention.ms from log.retention.ms); dynamic: (value, source) of
    what is set dynamically (KIP-226) for the resource: a BROKER resource's settings, or the
    defaults a TOPIC's unset configs take from them (broker_configs.py); writable: the BROKER
    settings that may be changed at run time (not read-only), with their config_type if known."""
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type,
             "resource_name": name, "configs": []}
    if resource_type == RESOURCE_TOPIC:
        if topic_configs is None:
            entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            entry["error_message"] = f"topic {name!r} does not exist"
            return entry
        static, dyn = broker_defaults or {}, dynamic or {}
        items = [(k, v, SOURCE_DYNAMIC_TOPIC) if not d else (k, *dyn[k]) if k in dyn else
                 (k, static[k], SOURCE_STATIC_BROKER) if static.get(k, v) != v else (k, v, SOURCE_DEFAULT)
                 for k, (v, d) in topic_configs.items()]
    elif resource_type == RESOURCE_BROKER:
        shown = {} if not name else {k: (v, SOURCE_STATIC_BROKER) for k, v in server_configs.items()}
        items = [(k, v, src) for k, (v, src) in {**shown, **(dynamic or {})}.items()]
    elif resource_type == RESOURCE_GROUP and group_configs is not None:
        items = [(k, v, SOURCE_DEFAULT if d else SOURCE_GROUP) for k, (v, d) in group_configs.items()]
    else:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = f"resource type {resource_type} is not supported"
        return entry
    wanted = set(keys) if keys else None
    writable = writable or {}
    for k, v, source in sorted(items):
        if wanted is not None and k not in wanted:
            continue
        entry["configs"].append({
            "name": k, "value": v, "read_only": resource_type == RESOURCE_BROKER and k not in writable,
            "is_default": source == SOURCE_DEFAULT, "config_source": source, "is_sensitive": False,
            "synonyms": [],
            "config_type": writable.get(k) or _config_type(resource_type, k),
            "documentation": None,
        })
    return entry

