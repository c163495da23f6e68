"""The broker's own settings (Kafka broker config names) and how they map to log defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import server_properties
from sandbox.log import LogConfig

DEFAULT_LISTENER = "PLAINTEXT"
SASL_LISTENER = "SASL_PLAINTEXT"   # a listener of this name authenticates (Kafka's default security map)
LISTENER_SYNTAX = "NAME=BIND_HOST:PORT[,advertised=HOST:PORT]"
_NAME = re.compile(r"[A-Za-z0-9_]+")
_WILDCARDS = {"0.0.0.0", "::", ""}


@dataclass
class Listener:
    """One socket the broker serves on (Kafka's `listeners` entry) and the address it
    advertises to clients that came in through it (`advertised.listeners`)."""

    name: str
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    @property
    def sasl(self) -> bool:
        """Clients must authenticate (SASL_PLAINTEXT) before any request but ApiVersions."""
        return self.name == SASL_LISTENER


def _split_host_port(text: str, what: str, spec: str) -> tuple[str, int]:
    """"HOST:PORT" or "[v6]:PORT" -> (host, port); ValueError names the listener and the part."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        sep, port_text = rest[:1], rest[1:]
        if not bracket or sep != ":":
            host, port_text = "", ""
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise ValueError(f"listener {spec!r} needs {what} as HOST:PORT, not {text!r}; "
                         f"write it like {LISTENER_SYNTAX}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"listener {spec!r} has port {port_text!r} in {what}, which is not a "
                         "number") from None
    if not 0 <= port < 65536:
        raise ValueError(f"listener {spec!r} has port {port} in {what}, outside 0-65535")
    return host, port


def parse_listener(spec: str) -> Listener:
    """`NAME=BIND_HOST:PORT[,advertised=HOST:PORT]` (advertised=HOST keeps the bound port) ->
    Listener; ValueError is one sentence naming what is wrong."""
    name, eq, rest = spec.strip().partition("=")
    name = name.strip()
    if not eq or not name:
        raise ValueError(f"listener {spec!r} is not {LISTENER_SYNTAX}, e.g. "
                         "EXTERNAL=127.0.0.1:9092,advertised=localhost:9092")
    if not _NAME.fullmatch(name):
        raise ValueError(f"listener name {name!r} may hold only letters, digits and '_'")
    bind, *options = [part.strip() for part in rest.split(",")]
    host, port = _split_host_port(bind, "a bind address", spec)
    listener = Listener(name.upper(), host, port)
    for option in options:
        key, eq, value = option.partition("=")
        if key.strip().lower() != "advertised" or not eq:
            raise ValueError(f"listener {spec!r} has unknown option {option!r}; the only option "
                             "is advertised=HOST:PORT")
        value = value.strip()
        has_port = "]:" in value if value.startswith("[") else ":" in value
        if has_port:
            adv_host, adv_port = _split_host_port(value, "an advertised address", spec)
            if adv_port == 0:
                raise ValueError(f"listener {spec!r} advertises port 0; advertise the port "
                                 "clients connect to")
        else:
            adv_host, adv_port = value.strip("[]"), 0
        if adv_host in _WILDCARDS:
            raise ValueError(f"listener {spec!r} advertises {value!r}; advertise a host clients "
                             "can reach, such as a container name or 127.0.0.1")
        listener.advertised_host, listener.advertised_port = adv_host, adv_port or None
    if listener.advertised_host is None and host in _WILDCARDS:
        raise ValueError(f"listener {spec!r} binds {host} but advertises no address; add "
                         ",advertised=HOST:PORT with a host clients can reach")
    return listener


def check_listeners(listeners: list[Listener]) -> None:
    """ValueError when two listeners share a name or a bound host:port."""
    names: set[str] = set()
    binds: set[tuple[str, int]] = set()
    for lst in listeners:
        if lst.name in names:
            raise ValueError(f"listener name {lst.name} is given twice; each --listener needs "
                             "its own name")
        names.add(lst.name)
        if lst.port and (lst.host, lst.port) in binds:
            raise ValueError(f"two listeners bind {lst.host}:{lst.port}; give each its own port")
        binds.add((lst.host, lst.port))


# broker setting -> BrokerConfig attribute
_ATTRIBUTES = {
    "auto.create.topics.enable": "auto_create_topics",
    "num.partitions": "num_partitions",
    "default.replication.factor": "default_replication_factor",
    "socket.request.max.bytes": "max_request_bytes",
    "group.initial.rebalance.delay.ms": "group_initial_rebalance_delay_ms",
    "group.min.session.timeout.ms": "group_min_session_timeout_ms",
    "group.max.session.timeout.ms": "group_max_session_timeout_ms",
    "delete.topic.enable": "delete_topic_enable",
    "group.max.size": "group_max_size",
    "group.consumer.max.size": "group_consumer_max_size",
    "sasl.enabled.mechanisms": "sasl_enabled_mechanisms",
    "authorizer.class.name": "authorizer_class_name",
    "super.users": "super_users",
    "allow.everyone.if.no.acl.found": "allow_everyone_if_no_acl_found",
    "group.consumer.heartbeat.interval.ms": "group_consumer_heartbeat_interval_ms",
    "group.consumer.session.timeout.ms": "group_consumer_session_timeout_ms",
    "group.consumer.migration.policy": "group_consumer_migration_policy",
    "log.retention.check.interval.ms": "retention_check_interval_ms",
    "log.cleaner.backoff.ms": "cleaner_backoff_ms",
    "offsets.fsync": "offsets_fsync",
    "offsets.topic.num.partitions": "offsets_topic_num_partitions",
    "offsets.topic.replication.factor": "offsets_topic_replication_factor",
    "offsets.commit.timeout.ms": "offsets_commit_timeout_ms",
    "offsets.retention.minutes": "offsets_retention_minutes",
    "offsets.retention.check.interval.ms": "offsets_retention_check_interval_ms",
    "transaction.max.timeout.ms": "transaction_max_timeout_ms",
    "transactional.id.expiration.ms": "transactional_id_expiration_ms",
    "producer.id.expiration.ms": "producer_id_expiration_ms",
    "transaction.state.log.num.partitions": "transaction_state_log_num_partitions",
    "transaction.state.log.replication.factor": "transaction_state_log_replication_factor",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "transaction_abort_timed_out_interval_ms",
    "replica.lag.time.max.ms": "replica_lag_time_max_ms",
    "min.insync.replicas": "min_insync_replicas",
    "broker.session.timeout.ms": "broker_session_timeout_ms",
}


@dataclass
class BrokerConfig:
    data_dir: Path
    node_id: int = 1
    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    coordinator: str | None = None  # "host:port" of a coordinator process; None = embedded
    auto_create_topics: bool = True
    num_partitions: int = 1
    default_replication_factor: int = 1
    max_request_bytes: int = 100 * 1024 * 1024
    message_max_bytes: int = 1048588
    group_initial_rebalance_delay_ms: int = 0
    group_min_session_timeout_ms: int = server_properties.SESSION_TIMEOUT_BOUNDS[0]
    group_max_session_timeout_ms: int = server_properties.SESSION_TIMEOUT_BOUNDS[1]
    delete_topic_enable: bool = True
    group_max_size: int = server_properties.INT_MAX            # classic groups' members (Kafka's default: no limit)
    group_consumer_max_size: int = server_properties.INT_MAX   # KIP-848 groups' members
    # KIP-848 groups; Kafka's heartbeat is 5000 (see consumer_groups.py)
    group_consumer_heartbeat_interval_ms: int = server_properties.CONSUMER_GROUP_TIMING[0]
    group_consumer_session_timeout_ms: int = server_properties.CONSUMER_GROUP_TIMING[1]
    group_consumer_migration_policy: str = "bidirectional"   # Kafka 4.0's default (KIP-848 online migration)
    retention_check_interval_ms: int = 300_000
    cleaner_backoff_ms: int = 15_000     # log.cleaner.backoff.ms: how often compacted topics are looked at
    checkpoint_interval_ms: int = 60_000
    offsets_fsync: bool = True
    offsets_topic_num_partitions: int = 10      # __consumer_offsets partitions (Kafka's 50)
    offsets_topic_replication_factor: int = 3   # capped at the live brokers when the topic is made
    offsets_commit_timeout_ms: int = 5000       # how long a commit waits for the ISR
    offsets_retention_minutes: int = 7 * 24 * 60   # a group's offsets expire this long after it emptied (KIP-211)
    offsets_retention_check_interval_ms: int = 600_000   # how often expired offsets are looked for
    transaction_max_timeout_ms: int = 900_000   # transaction.max.timeout.ms (15 minutes)
    transactional_id_expiration_ms: int = 7 * 24 * 3600 * 1000   # an idle transactional id is forgotten
    producer_id_expiration_ms: int = 24 * 3600 * 1000   # an idle producer's sequences are forgotten (Kafka's)
    transaction_state_log_num_partitions: int = 10       # __transaction_state partitions (Kafka's 50)
    transaction_state_log_replication_factor: int = 3    # capped at the live brokers when the topic is made
    transaction_abort_timed_out_interval_ms: int = 1000  # how often timed-out transactions are looked for
    replica_lag_time_max_ms: int = 30_000   # a follower this far behind leaves the ISR (Kafka's default)
    min_insync_replicas: int = 1             # acks=all needs this many in sync (topic config overrides)
    broker_session_timeout_ms: int = 9000    # the coordinator's; no acknowledgement after it may have expired
    log: LogConfig = field(default_factory=LogConfig)
    # Explicit listeners (--listener); empty = one PLAINTEXT listener from host/port/advertised_*.
    listeners: list[Listener] = field(default_factory=list)
    # --sasl-port: a SASL_PLAINTEXT listener beside the implicit PLAINTEXT one (same host, advertised host)
    sasl_port: int | None = None
    sasl_enabled_mechanisms: tuple[str, ...] = server_properties.SASL_MECHANISMS   # what the SASL listener offers
    authorizer_class_name: str = server_properties.STANDARD_AUTHORIZER   # "" = no authorizer
    super_users: tuple[str, ...] = server_properties.DEFAULT_SUPER_USERS
    allow_everyone_if_no_acl_found: bool = True   # Kafka's default is false; see docs/configuration.md

    def endpoints(self) -> list[Listener]:
        """The listeners to serve, the first being the primary one (its advertised address is
        the broker's address wherever no listener name applies)."""
        if self.listeners:
            return self.listeners
        primary = Listener(DEFAULT_LISTENER, self.host, self.port, self.advertised_host, self.advertised_port)
        if self.sasl_port is None:
            return [primary]
        return [primary, Listener(SASL_LISTENER, self.host, self.sasl_port, self.advertised_host)]

    def listener(self, name: str) -> Listener | None:
        return next((lst for lst in self.endpoints() if lst.name == name), None)

    @property
    def advertised(self) -> tuple[str, int]:
        return self.endpoints()[0].advertised

    def apply_overrides(self, overrides: dict[str, str]) -> None:
        """Apply Kafka-named broker settings (`-o key=value`, sandbox.toml's [broker]); ValueError
        is one sentence naming the bad key (sandbox/server_properties.py has the table)."""
        settings = server_properties.normalize(overrides)
        topic_level: dict[str, str] = {}
        for key, value in settings.items():
            if key in server_properties.TOPIC_SYNONYMS:   # the default of a topic-level config
                topic_level[server_properties.TOPIC_SYNONYMS[key]] = value
                if key == "message.max.bytes":
                    self.message_max_bytes = int(value)
            elif key in server_properties.COORDINATOR_ONLY:
                raise ValueError(f"{key} is the coordinator's setting; give it to `sandbox coordinator`")
            elif key in _ATTRIBUTES:
                kind = server_properties.SETTINGS[key].kind
                setattr(self, _ATTRIBUTES[key], value == "true" if kind == "bool" else
                        value if kind == "choice" else tuple(value.split(",")) if kind == "list" else
                        tuple(v for v in value.split(";") if v) if kind == "principals" else int(value))
            else:   # a setting of the table the broker does not map: a defect, not bad input
                raise ValueError(f"unknown broker setting {key!r}")
        if topic_level:
            self.log = LogConfig.from_topic_config(topic_level, base=self.log)
