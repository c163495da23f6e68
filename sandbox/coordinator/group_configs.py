"""Group configs (KIP-848): per-group overrides of the group coordinator's settings, set with
IncrementalAlterConfigs / AlterConfigs on a GROUP resource (type 32) and kept by the coordinator
as Kafka's controller keeps them. Pure: validation into journal records, and their application.

consumer.session.timeout.ms and consumer.heartbeat.interval.ms act on the group's
consumer-protocol members (broker/consumer_groups.py). The share.* ones (KIP-932 share groups,
which this sandbox does not serve) are validated and kept, as Kafka 4 keeps them."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sandbox.protocol.errors import INVALID_CONFIG, INVALID_REQUEST

from . import topic_configs
from .model import CoordinatorError

RESOURCE_GROUP = 32

SESSION, HEARTBEAT = "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"
SHARE_SESSION, SHARE_HEARTBEAT = "share.session.timeout.ms", "share.heartbeat.interval.ms"
SHARE_LOCK, SHARE_RESET = "share.record.lock.duration.ms", "share.auto.offset.reset"

# the broker's defaults (group.consumer.heartbeat.interval.ms is 1000 here, Kafka's 5000: see
# broker/consumer_groups.py), and the bounds Kafka's group.*.min/max.* settings give them; the
# lower heartbeat bound is the sandbox's own default rather than Kafka's 5000
DEFAULTS: dict[str, str] = {
    SESSION: "45000", HEARTBEAT: "1000",
    SHARE_SESSION: "45000", SHARE_HEARTBEAT: "5000", SHARE_LOCK: "30000", SHARE_RESET: "latest",
}
_BOUNDS: dict[str, tuple[int, int, str, str]] = {
    SESSION: (45000, 60000, "group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms"),
    HEARTBEAT: (1000, 15000, "group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms"),
    SHARE_SESSION: (45000, 60000, "group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms"),
    SHARE_HEARTBEAT: (5000, 15000, "group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms"),
    SHARE_LOCK: (15000, 60000, "group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms"),
}
_CHOICES = {SHARE_RESET: ("latest", "earliest")}

Configs = dict[str, dict[str, str]]   # group id -> its overrides


def _invalid(message: str) -> CoordinatorError:
    return CoordinatorError(INVALID_CONFIG, message)


def _value(key: str, value: Any) -> str:
    text = str(value).strip()
    if key in _CHOICES:
        if text.lower() not in _CHOICES[key]:
            raise _invalid(f"Invalid value {value} for configuration {key}: String must be one of: "
                           + ", ".join(_CHOICES[key]))
        return text.lower()
    try:
        number = int(text)
    except ValueError:
        raise _invalid(f"Invalid value {value} for configuration {key}: Not a number of type INT") from None
    low, high, low_name, high_name = _BOUNDS[key]
    if number < low:
        raise _invalid(f"{key} must be greater than or equal to {low_name} ({low})")
    if number > high:
        raise _invalid(f"{key} must be less than or equal to {high_name} ({high})")
    return str(number)


def alteration(current: Mapping[str, str], group: str, set_: Mapping[str, Any] | None,
               delete: Iterable[str] | None, incremental: bool) -> list[dict]:
    """The journal record of a change of `group`'s overrides (current: its overrides now).
    incremental: `set_` applied, then `delete` keys back to their defaults; otherwise the
    overrides become exactly `set_`. Raises CoordinatorError as Kafka answers."""
    if not group:
        raise CoordinatorError(INVALID_REQUEST, "A group config needs a group id")
    new = {}
    for key, value in (set_ or {}).items():
        if key not in DEFAULTS:
            raise _invalid(f"Unknown group config name: {key}")
        if value is not None:
            new[key] = _value(key, value)
    dropped = [str(k) for k in (delete or ())]
    for key in dropped:
        if key not in DEFAULTS:
            raise _invalid(f"Unknown group config name: {key}")
    configs = topic_configs.merged(current, new, dropped, incremental)
    effective = {**DEFAULTS, **configs}
    for session, heartbeat in ((SESSION, HEARTBEAT), (SHARE_SESSION, SHARE_HEARTBEAT)):
        if int(effective[session]) <= int(effective[heartbeat]):
            raise _invalid(f"{session} must be greater than {heartbeat}")
    return [{"type": "group-config", "group": group, "configs": dict(sorted(configs.items()))}]


def apply(store: Configs, record: Mapping[str, Any]) -> None:
    topic_configs.store(store, str(record["group"]), record.get("configs"))


def described(overrides: Mapping[str, str]) -> dict[str, tuple[str, bool]]:
    """Every group config -> (value, is_default), as DescribeConfigs lists them."""
    return {k: (overrides.get(k, v), k not in overrides) for k, v in sorted(DEFAULTS.items())}


def session_settings(overrides: Mapping[str, str], heartbeat_ms: int, session_ms: int) -> tuple[int, int]:
    """(heartbeat interval, session timeout) of a consumer group: its overrides, else the broker's."""
    return int(overrides.get(HEARTBEAT, heartbeat_ms)), int(overrides.get(SESSION, session_ms))
