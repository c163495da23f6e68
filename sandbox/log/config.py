"""LogConfig: one partition's journal settings with Kafka's topic-config names and defaults."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

_TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
_CLEANUP = ("delete", "compact")


@dataclass
class LogConfig:
    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    retention_ms: int = 604800000  # -1 = keep forever
    retention_bytes: int = -1  # -1 = no size limit
    index_interval_bytes: int = 4096
    max_message_bytes: int = 1048588
    flush_messages: int | None = None  # None = never fsync because of a message count
    flush_ms: int | None = None  # None = never fsync because of time
    message_timestamp_type: str = "CreateTime"
    cleanup_policy: str = "delete"
    file_delete_delay_ms: int = 60000
    delete_retention_ms: int = 86400000     # compaction keeps a tombstone this long
    min_compaction_lag_ms: int = 0           # compaction leaves records younger than this alone

    # Kafka topic-config name -> (field, parser)
    _KEYS = {
        "segment.bytes": "segment_bytes",
        "segment.ms": "segment_ms",
        "retention.ms": "retention_ms",
        "retention.bytes": "retention_bytes",
        "index.interval.bytes": "index_interval_bytes",
        "max.message.bytes": "max_message_bytes",
        "flush.messages": "flush_messages",
        "flush.ms": "flush_ms",
        "message.timestamp.type": "message_timestamp_type",
        "cleanup.policy": "cleanup_policy",
        "file.delete.delay.ms": "file_delete_delay_ms",
        "delete.retention.ms": "delete_retention_ms",
        "min.compaction.lag.ms": "min_compaction_lag_ms",
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the Kafka key of the first bad setting."""
        def need(cond: bool, key: str, why: str) -> None:
            if not cond:
                raise ValueError(f"invalid topic config {key}={getattr(self, self._KEYS[key])!r}: {why}")

        need(isinstance(self.segment_bytes, int) and self.segment_bytes >= 14, "segment.bytes", "must be an integer >= 14")
        need(isinstance(self.segment_ms, int) and self.segment_ms >= 1, "segment.ms", "must be an integer >= 1")
        need(isinstance(self.retention_ms, int) and self.retention_ms >= -1, "retention.ms", "must be -1 (forever) or >= 0")
        # any negative is no limit, as Kafka's (retention.bytes has no validator there)
        need(isinstance(self.retention_bytes, int), "retention.bytes", "must be an integer (negative: no limit)")
        need(isinstance(self.index_interval_bytes, int) and self.index_interval_bytes >= 0,
             "index.interval.bytes", "must be an integer >= 0")
        need(isinstance(self.max_message_bytes, int) and self.max_message_bytes >= 0, "max.message.bytes", "must be an integer >= 0")
        need(self.flush_messages is None or (isinstance(self.flush_messages, int) and self.flush_messages >= 1),
             "flush.messages", "must be an integer >= 1")
        need(self.flush_ms is None or (isinstance(self.flush_ms, int) and self.flush_ms >= 0), "flush.ms", "must be an integer >= 0")
        need(self.message_timestamp_type in _TIMESTAMP_TYPES, "message.timestamp.type", "must be CreateTime or LogAppendTime")
        need(all(p in _CLEANUP for p in self._policies), "cleanup.policy", "must be delete, compact or compact,delete")
        need(isinstance(self.file_delete_delay_ms, int) and self.file_delete_delay_ms >= 0,
             "file.delete.delay.ms", "must be an integer >= 0")
        need(isinstance(self.delete_retention_ms, int) and self.delete_retention_ms >= 0,
             "delete.retention.ms", "must be an integer >= 0")
        need(isinstance(self.min_compaction_lag_ms, int) and self.min_compaction_lag_ms >= 0,
             "min.compaction.lag.ms", "must be an integer >= 0")

    @property
    def _policies(self) -> list[str]:
        return [p.strip() for p in str(self.cleanup_policy).split(",")]

    @property
    def deletes(self) -> bool:
        """True when time/size retention applies (cleanup.policy contains delete)."""
        return "delete" in self._policies

    @property
    def compacts(self) -> bool:
        """True when the cleaner keeps only the latest record per key (cleanup.policy contains compact)."""
        return "compact" in self._policies

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_topic_config(cls, configs: dict[str, str], base: "LogConfig | None" = None) -> "LogConfig":
        """Build from Kafka topic configs (string values) over `base` (default: Kafka defaults).
        Unknown keys are ignored (they belong to other layers); bad values raise ValueError."""
        values = dataclasses.asdict(base) if base is not None else {}
        for key, raw in configs.items():
            field = cls._KEYS.get(key)
            if field is None:
                continue
            if field in ("message_timestamp_type", "cleanup_policy"):
                values[field] = None if raw is None else str(raw).strip()
                continue
            if raw is None or (field in ("flush_messages", "flush_ms") and str(raw).strip() == ""):
                values[field] = None if field in ("flush_messages", "flush_ms") else raw
                continue
            try:
                n = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"invalid topic config {key}={raw!r}: must be an integer") from None
            if field == "flush_messages" and n >= 2**63 - 1:
                values[field] = None  # Kafka's default Long.MAX_VALUE means "never"
            elif field == "flush_ms" and n >= 2**63 - 1:
                values[field] = None
            else:
                values[field] = n
        return cls(**values)
