"""DescribeConfigs' include_synonyms and include_documentation (KIP-226, KIP-2xx): each config's
synonyms in Kafka's order of precedence (the topic's own value, then the broker setting it
defaults to: this broker's dynamic one, the cluster-wide dynamic one, the static one, Kafka's
default) and a one-line documentation string."""

from __future__ import annotations

from typing import Mapping

from sandbox.coordinator import broker_configs
from sandbox.coordinator.topic_configs import DEFAULTS as TOPIC_DEFAULTS
from sandbox.coordinator.topic_configs import RESOURCE_BROKER, RESOURCE_TOPIC

DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC_BROKER, DEFAULT = 1, 2, 3, 4, 5

# the broker settings each topic config defaults to (log.retention.ms for retention.ms)
_BROKER_KEYS: dict[str, list[str]] = {}
for _b, _t in broker_configs.LOG_DEFAULTS.items():
    _BROKER_KEYS.setdefault(_t, []).append(_b)

TOPIC_DOCS: dict[str, str] = {
    "cleanup.policy": "delete, compact or both: how old log segments are retired.",
    "compression.gzip.level": "The gzip level the broker compresses with when compression.type is gzip.",
    "compression.lz4.level": "The lz4 level the broker compresses with when compression.type is lz4.",
    "compression.type": "The topic's final compression (or producer: keep the producer's).",
    "compression.zstd.level": "The zstd level the broker compresses with when compression.type is zstd.",
    "delete.retention.ms": "How long tombstones are kept on a compacted topic.",
    "file.delete.delay.ms": "How long a retired segment waits before its files are deleted.",
    "flush.messages": "Records appended between forced fsyncs of the log.",
    "flush.ms": "Milliseconds between forced fsyncs of the log.",
    "follower.replication.throttled.replicas": "Replicas whose follower fetching is throttled.",
    "index.interval.bytes": "Bytes appended between offset index entries.",
    "leader.replication.throttled.replicas": "Replicas whose leader-side replication is throttled.",
    "local.retention.bytes": "Bytes kept locally with tiered storage (-2: retention.bytes).",
    "local.retention.ms": "Time kept locally with tiered storage (-2: retention.ms).",
    "max.compaction.lag.ms": "The longest a record may stay uncompacted.",
    "max.message.bytes": "The largest record batch the topic accepts.",
    "message.timestamp.after.max.ms": "How far in the future a CreateTime timestamp may be.",
    "message.timestamp.before.max.ms": "How far in the past a CreateTime timestamp may be.",
    "message.timestamp.type": "CreateTime (the producer's) or LogAppendTime (the broker's).",
    "min.cleanable.dirty.ratio": "The dirty share of a log that makes it due for compaction.",
    "min.compaction.lag.ms": "The shortest a record stays uncompacted.",
    "min.insync.replicas": "In-sync replicas an acks=all write needs.",
    "preallocate": "Whether segment files are preallocated.",
    "remote.log.copy.disable": "Stops copying segments to tiered storage.",
    "remote.log.delete.on.disable": "Deletes tiered segments when tiered storage is disabled.",
    "remote.storage.enable": "Whether the topic uses tiered storage.",
    "retention.bytes": "Bytes kept per partition before old segments go (-1: no limit).",
    "retention.ms": "How long records are kept (-1: for ever).",
    "segment.bytes": "The size at which a new log segment is started.",
    "segment.index.bytes": "The size of a segment's offset index.",
    "segment.jitter.ms": "Random time subtracted from segment.ms.",
    "segment.ms": "The age at which a new log segment is started.",
    "unclean.leader.election.enable": "Whether an out-of-sync replica may become leader.",
}


def documentation(resource_type: int, key: str) -> str | None:
    if resource_type == RESOURCE_TOPIC:
        return TOPIC_DOCS.get(key)
    topic_key = broker_configs.LOG_DEFAULTS.get(key)
    return f"The default of topic config {topic_key}. {TOPIC_DOCS.get(topic_key, '')}".strip() if topic_key else None


def _broker_chain(key: str, broker: str, store: Mapping[str, Mapping[str, str]], server: Mapping[str, str],
                  default: str | None, static_default: str | None = None) -> list[tuple[str, str, int]]:
    chain = []
    if broker and key in store.get(broker, {}):
        chain.append((key, store[broker][key], DYNAMIC_BROKER))
    if key in store.get(broker_configs.DEFAULT, {}):
        chain.append((key, store[broker_configs.DEFAULT][key], DYNAMIC_DEFAULT))
    if broker and key in server and server[key] != static_default:
        chain.append((key, server[key], STATIC_BROKER))
    if default is not None:
        chain.append((key, default, DEFAULT))
    return chain


def synonyms(resource_type: int, name: str, config: dict, store: Mapping[str, Mapping[str, str]],
             server: Mapping[str, str], node_id: int) -> list[dict]:
    """A described config's synonyms, highest precedence first (the config itself among them)."""
    key = config["name"]
    if resource_type == RESOURCE_TOPIC:
        chain = [(key, config["value"], DYNAMIC_TOPIC)] if config["config_source"] == DYNAMIC_TOPIC else []
        broker = str(node_id) if node_id >= 0 else ""
        for b in _BROKER_KEYS.get(key, ()):
            chain += _broker_chain(b, broker, store, server, TOPIC_DEFAULTS.get(key), TOPIC_DEFAULTS.get(key))
        if not _BROKER_KEYS.get(key):
            chain.append((key, TOPIC_DEFAULTS.get(key), DEFAULT))
    elif resource_type == RESOURCE_BROKER:
        chain = _broker_chain(key, name, store, server, broker_configs.DEFAULTS.get(key))
        if not chain:
            chain = [(key, config["value"], config["config_source"])]
    else:
        chain = [(key, config["value"], config["config_source"])]
    return [{"name": k, "value": v, "source": s} for k, v, s in chain]


def annotate(entry: dict, resource_type: int, name: str, store, server, node_id: int,
             with_synonyms: bool, with_documentation: bool) -> dict:
    """The DescribeConfigs result with synonyms and documentation filled in where asked."""
    for config in entry.get("configs") or ():
        if with_synonyms:
            config["synonyms"] = synonyms(resource_type, name, config, store, server, node_id)
        if with_documentation:
            config["documentation"] = documentation(resource_type, config["name"])
    return entry
