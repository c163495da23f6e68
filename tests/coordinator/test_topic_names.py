"""Topic rules Kafka parity needs: Windows-safe names (device names, names differing only in case
are refused) and topic configs (deprecated ones ignored, an empty cleanup.policy allowed)."""
from __future__ import annotations

import uuid

import pytest

from sandbox.coordinator import CoordinatorError
from sandbox.protocol import errors as E
from sandbox.coordinator.rules import validate_topic_name
from coordinator.coordinator_helpers import machine_with_brokers, run


@pytest.mark.parametrize("name", ["aux", "CON", "nul.txt", "prn.a.b", "com1", "Com5.log", "lpt9", "LPT3.x"])
def test_device_names_refused(name):
    with pytest.raises(CoordinatorError) as info:
        validate_topic_name(name)
    assert info.value.error_code == E.INVALID_TOPIC_EXCEPTION
    assert "reserved device name" in info.value.message


@pytest.mark.parametrize("name", ["auxiliary", "con-1", "com0", "com10", "lpt", "nul_", "x.con", "_nul"])
def test_near_device_names_allowed(name):
    assert validate_topic_name(name) == name


def test_case_twin_refused_and_removed_name_reusable():
    m = machine_with_brokers(1)
    run(m, m.create_topic("Orders", 1, 1, None, uuid.uuid4()))
    for twin in ("orders", "ORDERS", "oRdErS"):
        with pytest.raises(CoordinatorError) as info:
            m.create_topic(twin, 1, 1, None, uuid.uuid4())
        assert info.value.error_code == E.INVALID_TOPIC_EXCEPTION
        assert "differs only in case" in info.value.message and "'Orders'" in info.value.message
    run(m, m.delete_topic("Orders"))
    run(m, m.create_topic("orders", 1, 1, None, uuid.uuid4()))
    assert m.topic("orders") is not None


def test_deprecated_config_ignored_and_empty_cleanup_policy_allowed():
    m = machine_with_brokers(1)
    run(m, m.create_topic("t", 1, 1, {"message.format.version": "2.8", "cleanup.policy": ""}, uuid.uuid4()))
    assert m.topic("t").configs == {"cleanup.policy": ""}
    run(m, m.alter_configs("t", {"message.format.version": "3.0"}, ["message.format.version"]))
    assert m.topic("t").configs == {"cleanup.policy": ""}
