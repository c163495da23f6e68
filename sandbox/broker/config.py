"""The broker's own settings (Kafka broker config names) and how they map to log defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sandbox.log import LogConfig

# Kafka broker config name -> (attribute, parser)
_BOOL = {"true": True, "false": False}


def _bool(key: str, v: str) -> bool:
    try:
        return _BOOL[v.strip().lower()]
    except KeyError:
        raise ValueError(f"{key} must be true or false, not {v!r}") from None


def _int(key: str, v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"{key} must be an integer, not {v!r}") from None


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
    retention_check_interval_ms: int = 300_000
    checkpoint_interval_ms: int = 60_000
    offsets_fsync: bool = True
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    def apply_overrides(self, overrides: dict[str, str]) -> None:
        """Apply Kafka-named broker settings (`-o key=value`); ValueError names the bad key."""
        log_keys = {
            "log.segment.bytes": "segment.bytes",
            "log.roll.ms": "segment.ms",
            "log.retention.ms": "retention.ms",
            "log.retention.bytes": "retention.bytes",
            "log.index.interval.bytes": "index.interval.bytes",
            "log.flush.interval.messages": "flush.messages",
            "log.flush.interval.ms": "flush.ms",
            "log.message.timestamp.type": "message.timestamp.type",
            "message.max.bytes": "max.message.bytes",
        }
        topic_level: dict[str, str] = {}
        for key, value in overrides.items():
            if key in log_keys:
                topic_level[log_keys[key]] = value
                if key == "message.max.bytes":
                    self.message_max_bytes = _int(key, value)
            elif key == "auto.create.topics.enable":
                self.auto_create_topics = _bool(key, value)
            elif key == "num.partitions":
                self.num_partitions = _int(key, value)
            elif key == "default.replication.factor":
                self.default_replication_factor = _int(key, value)
            elif key == "socket.request.max.bytes":
                self.max_request_bytes = _int(key, value)
            elif key == "group.initial.rebalance.delay.ms":
                self.group_initial_rebalance_delay_ms = _int(key, value)
            elif key == "log.retention.check.interval.ms":
                self.retention_check_interval_ms = _int(key, value)
            elif key == "offsets.fsync":
                self.offsets_fsync = _bool(key, value)
            else:
                raise ValueError(f"unknown broker setting {key!r}")
        if topic_level:
            self.log = LogConfig.from_topic_config(topic_level, base=self.log)
