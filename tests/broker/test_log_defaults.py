"""A partition's log config (broker/log_defaults.py): its topic's own configs over the [broker]
settings overlaid with the dynamic ones (the cluster-wide default, then this broker's own); a
dynamic value the log cannot take is left out with a warning and never stops the broker."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from sandbox.broker.log_defaults import LogDefaults
from sandbox.log import LogConfig


def _coordinator(store: dict) -> SimpleNamespace:
    return SimpleNamespace(broker_configs=lambda: {k: dict(v) for k, v in store.items()})


def test_topic_over_broker_over_default_over_static():
    static = LogConfig.from_topic_config({"retention.ms": "1000", "segment.bytes": "4096"})
    store = {"": {"log.retention.ms": "5000", "message.max.bytes": "2000"}, "2": {"log.retention.ms": "9000"}}
    one, two = LogDefaults(static, 1), LogDefaults(static, 2)
    b1, b2 = one.base(_coordinator(store)), two.base(_coordinator(store))
    assert (b1.retention_ms, b1.max_message_bytes, b1.segment_bytes) == (5000, 2000, 4096)
    assert b2.retention_ms == 9000
    assert one.log_config({"retention.ms": "42"}, b1).retention_ms == 42
    assert one.log_config({}, b1) is b1
    # an empty cleanup.policy of a topic keeps everything (KAFKA-19112)
    kept = one.log_config({"cleanup.policy": ""}, b1)
    assert (kept.cleanup_policy, kept.retention_ms, kept.retention_bytes) == ("delete", -1, -1)
    store.clear()
    assert one.base(_coordinator(store)) is static   # deleted: back to the [broker] settings


def test_a_value_the_log_cannot_take_is_left_out(caplog):
    caplog.set_level(logging.WARNING, logger="sandbox.broker")
    static = LogConfig()
    d = LogDefaults(static, 1)
    got = d.base(_coordinator({"": {"log.cleanup.policy": "", "log.retention.ms": "5000"}}))
    assert got.retention_ms == 5000 and got.cleanup_policy == static.cleanup_policy
    assert "cleanup.policy" in caplog.text and "not applied" in caplog.text
