"""Dynamic broker configs (coordinator/broker_configs.py), pure: what is taken and refused as
Kafka's controller and brokers answer (INVALID_REQUEST, BROKER_ID_NOT_REGISTERED), incremental and
legacy changes, the journal form, and what one broker makes of the default and its own."""

from __future__ import annotations

import pytest

from sandbox.coordinator import broker_configs as B
from sandbox.coordinator.machine import MetadataMachine
from sandbox.coordinator.model import ClusterState, CoordinatorError
from sandbox.protocol import errors as E


def _alter(current=None, name="", set_=None, delete=None, incremental=True, brokers=(1, 2)):
    [record] = B.alteration(current or {}, name, set_, delete, incremental, brokers)
    assert record["type"] == "broker-config" and record["broker"] == name
    return record["configs"]


def _refused(code, words, **kw):
    with pytest.raises(CoordinatorError) as info:
        _alter(**kw)
    assert info.value.error_code == code and words in info.value.message, info.value.message


def test_log_defaults_inert_and_custom_names_are_taken_in_canonical_form():
    got = _alter(set_={"log.retention.ms": " 7200000 ", "message.max.bytes": "2000", "num.io.threads": "16",
                       "log.cleaner.io.buffer.load.factor": "0.5", "custom.thing": "kept",
                       "log.cleanup.policy": "compact, delete", "log.preallocate": "TRUE", "log.roll.jitter.ms": "5"})
    assert got == {"custom.thing": "kept", "log.cleaner.io.buffer.load.factor": "0.5",
                   "log.cleanup.policy": "compact,delete", "log.retention.ms": "7200000",
                   "message.max.bytes": "2000", "num.io.threads": "16", "log.preallocate": "true",
                   "log.roll.jitter.ms": "5"}


def test_refusals_are_kafkas():
    _refused(E.INVALID_REQUEST, "Cannot update these configs dynamically: Set(broker.id, log.dirs)",
             set_={"broker.id": "3", "log.dirs": "/x"})
    _refused(E.INVALID_REQUEST, "Set(num.partitions); the sandbox takes them from sandbox.toml",
             name="1", set_={"num.partitions": "3"})
    _refused(E.INVALID_REQUEST, "set it per topic", set_={"min.insync.replicas": "2"})
    _refused(E.INVALID_REQUEST, "Set(log.retention.hours)", delete=["log.retention.hours"])
    _refused(E.INVALID_REQUEST, "broker id must be specified: Set(sasl.kerberos.min.time.before.relogin)",
             set_={"sasl.kerberos.min.time.before.relogin": "58000"})
    _refused(E.INVALID_REQUEST, "Invalid value 'soon' for configuration log.retention.ms", set_={"log.retention.ms": "soon"})
    _refused(E.INVALID_REQUEST, "Not a number of type INT", name="2", set_={"num.io.threads": "many"})
    _refused(E.INVALID_REQUEST, "Node id must be an integer, but it is: abc", name="abc", set_={"num.io.threads": "1"})
    _refused(E.INVALID_REQUEST, "Node id must be an integer", name="-1", set_={"num.io.threads": "1"})
    _refused(E.BROKER_ID_NOT_REGISTERED, "No node with id 7 found.", name="7", set_={"num.io.threads": "1"})
    _refused(E.INVALID_REQUEST, "both set and deleted", set_={"num.io.threads": "1"}, delete=["num.io.threads"])
    _refused(E.INVALID_REQUEST, "only meaningful for incremental", delete=["num.io.threads"], incremental=False)
    _refused(E.INVALID_REQUEST, "only taken per topic", set_={"log.cleanup.policy": ""})
    _refused(E.INVALID_REQUEST, "Not a boolean of type BOOLEAN", set_={"log.preallocate": "maybe"})
    with pytest.raises(CoordinatorError) as info:   # the supervisor's internal key is never named
        _alter(set_={"sandbox.restore.cluster.id": "x", "broker.id": "1"})
    assert "restore" not in info.value.message and "Set(broker.id)" in info.value.message
    # per-broker settings are taken for one broker
    assert _alter(name="1", set_={"sasl.kerberos.min.time.before.relogin": "58000"}) == \
        {"sasl.kerberos.min.time.before.relogin": "58000"}


def test_incremental_adds_and_deletes_legacy_replaces():
    now = {"num.io.threads": "16", "log.retention.ms": "1000"}
    assert _alter(now, set_={"background.threads": "4"}, delete=["log.retention.ms"]) == \
        {"background.threads": "4", "num.io.threads": "16"}
    assert _alter(now, set_={"background.threads": "4"}, incremental=False) == {"background.threads": "4"}
    assert _alter(now, set_={}, incremental=False) == {}


def test_journal_round_trip_and_what_one_broker_sees():
    m = MetadataMachine()
    for r in m.set_cluster_id("c1"):
        m.apply(r)
    store: B.Configs = {}
    for name, values in (("", {"log.retention.ms": "5000", "message.max.bytes": "2000"}),
                         ("1", {"log.retention.ms": "9000", "num.io.threads": "4"})):
        for r in B.alteration(store.get(name, {}), name, values, None, True, (1, 2)):
            B.apply(store, r)
            m.apply(r)
    assert m.broker_configs() == store
    state = ClusterState.from_dict(m.state().to_dict())
    assert state.broker_configs == store
    one, two = B.effective(store, 1), B.effective(store, 2)
    assert one["log.retention.ms"] == ("9000", B.SOURCE_DYNAMIC_BROKER)
    assert one["message.max.bytes"] == ("2000", B.SOURCE_DYNAMIC_DEFAULT)
    assert two["log.retention.ms"] == ("5000", B.SOURCE_DYNAMIC_DEFAULT) and "num.io.threads" not in two
    assert B.topic_defaults(store, 1) == {"retention.ms": ("9000", B.SOURCE_DYNAMIC_BROKER),
                                          "max.message.bytes": ("2000", B.SOURCE_DYNAMIC_DEFAULT)}
    for r in B.alteration(store[""], "", None, ["log.retention.ms", "message.max.bytes"], True, ()):
        B.apply(store, r)
    assert "" not in store and B.topic_defaults(store, 2) == {}


def test_every_dynamic_setting_has_a_default_to_describe_or_a_broker_setting():
    from sandbox.server_properties import SETTINGS
    assert all(k in B.DEFAULTS or k in SETTINGS for k in B.DYNAMIC)
    assert not B.STATIC & B.DYNAMIC
