"""sandbox.toml's [broker] section with a real stack and real clients: the brokers run with the
settings (a client naming a missing topic is refused when auto-creation is off, DescribeConfigs
shows the values as Kafka's tools do), a change is reported until `sandbox restart` applies it."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, ConfigSource

from helpers import wait_for

from .kit import admin, consumer, create_topic, producer
from .stack_kit import all_running_healthy, wait_status

pytestmark = pytest.mark.integration

SETTINGS = ('\n[broker]\nauto.create.topics.enable = false\n"log.retention.hours" = 2\n'
            '"delete.topic.enable" = false\n"group.min.session.timeout.ms" = 6000\n')


def _produce_to(bootstrap: str, topic: str) -> KafkaError | None:
    """One record to `topic`; the delivery error (None when it was written)."""
    errors: list = []
    # librdkafka reports a topic the metadata keeps missing after topic.metadata.propagation.max.ms
    p = producer(bootstrap, **{"message.timeout.ms": 8000, "acks": "all", "topic.metadata.propagation.max.ms": 1000})
    p.produce(topic, b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1, errors
    return errors[0]


def _broker_config(bootstrap: str, key: str) -> str:
    res, a = ConfigResource(ConfigResource.Type.BROKER, "1"), admin(bootstrap)   # kept until answered
    return a.describe_configs([res])[res].result(timeout=15)[key].value


def test_broker_settings_reach_the_brokers_and_a_change_waits_for_restart(projects):
    proj = projects("settings", brokers=1)
    proj.write_toml(proj.toml + SETTINGS)
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr

    # auto-creation off: the producer's record to a missing topic fails, and no topic appears
    err = _produce_to(proj.bootstrap, "nowhere")
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert "nowhere" not in admin(proj.bootstrap).list_topics(timeout=10).topics
    assert _broker_config(proj.bootstrap, "auto.create.topics.enable") == "false"
    assert _broker_config(proj.bootstrap, "log.retention.ms") == "7200000"

    # a topic that sets no retention shows the broker's, from its static config (kafka-configs)
    create_topic(proj.bootstrap, "kept", 1)
    res, a = ConfigResource(ConfigResource.Type.TOPIC, "kept"), admin(proj.bootstrap)
    entry = a.describe_configs([res])[res].result(timeout=15)["retention.ms"]
    assert entry.value == "7200000" and entry.source == ConfigSource.STATIC_BROKER_CONFIG.value, \
        (entry.value, entry.source)

    # deletion off: refused as Kafka refuses it, the topic stays
    a = admin(proj.bootstrap)
    with pytest.raises(KafkaException) as refused:
        a.delete_topics(["kept"], request_timeout=15)["kept"].result(timeout=20)
    assert refused.value.args[0].code() == KafkaError.TOPIC_DELETION_DISABLED, refused.value
    assert "kept" in a.list_topics(timeout=10).topics

    # Kafka's 6000 ms lower bound on a consumer's session: a 3000 ms one cannot join
    c = consumer(proj.bootstrap, "short-sessions", **{"session.timeout.ms": 3000, "heartbeat.interval.ms": 500})
    try:
        c.subscribe(["kept"])
        errors: list = []
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                errors.append(m.error())
        assert errors and errors[0].code() == KafkaError.INVALID_SESSION_TIMEOUT, errors
    finally:
        c.close()

    # a change while it runs: reported, not applied, until `sandbox restart`
    proj.write_toml(proj.toml.replace("auto.create.topics.enable = false", "auto.create.topics.enable = true"))
    code, st = wait_status(proj, lambda c, s: s.get("restart_needed"), 15, "the pending restart in status")
    assert "[broker] auto.create.topics.enable=true" in st["restart_needed"], st["restart_needed"]
    assert _broker_config(proj.bootstrap, "auto.create.topics.enable") == "false"
    r = proj.cli("restart", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    proj._remember_pids()
    wait_status(proj, lambda c, s: c == 0 and all_running_healthy(s) and s.get("restart_needed") is None,
                30, "healthy with the new settings")
    assert _broker_config(proj.bootstrap, "auto.create.topics.enable") == "true"
    wait_for(lambda: _produce_to(proj.bootstrap, "made-on-demand") is None, 30, what="an auto-created topic")


def test_a_bad_broker_setting_stops_up_before_anything_starts(projects):
    proj = projects("bad", brokers=1)
    proj.write_toml(proj.toml + '\n[broker]\n"log.retention.hours" = "a day"\n')
    r = proj.up()
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "log.retention.hours must be a whole number, not 'a day'" in out, out
    assert "Traceback" not in out and not (proj.data_dir / "logs").exists(), out
