"""Group configs (KIP-848, resource type GROUP): validated as Kafka's GroupConfig validates them,
kept per group by the metadata machine, described with their defaults for any group id."""
from __future__ import annotations

import pytest

from sandbox.coordinator import CoordinatorError, MetadataMachine
from sandbox.coordinator.group_configs import session_settings
from sandbox.protocol import errors as E


def altered(m: MetadataMachine, group: str, set_=None, delete=None, incremental=True) -> MetadataMachine:
    for r in m.alter_group_configs(group, set_, delete, incremental):
        m.apply(r)
    return m


def refusal(m: MetadataMachine, group: str, set_=None, delete=None, incremental=True) -> CoordinatorError:
    with pytest.raises(CoordinatorError) as info:
        m.alter_group_configs(group, set_, delete, incremental)
    return info.value


def test_set_describe_and_delete_back_to_the_default():
    m = altered(MetadataMachine(), "g", {"consumer.session.timeout.ms": "50000"})
    assert m.group_configs("g") == {"consumer.session.timeout.ms": "50000"}
    described = m.describe_group_configs("g")
    assert described["consumer.session.timeout.ms"] == ("50000", False)
    assert described["consumer.heartbeat.interval.ms"] == ("1000", True)
    assert set(described) == {"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms",
                              "share.session.timeout.ms", "share.heartbeat.interval.ms",
                              "share.record.lock.duration.ms", "share.auto.offset.reset"}
    # any group id is described, with the defaults (Kafka does not ask whether the group exists)
    assert all(d for _v, d in m.describe_group_configs("never-seen").values())
    altered(m, "g", {"consumer.heartbeat.interval.ms": "3000"})
    assert m.group_configs("g") == {"consumer.session.timeout.ms": "50000", "consumer.heartbeat.interval.ms": "3000"}
    altered(m, "g", None, ["consumer.session.timeout.ms"])
    assert m.group_configs("g") == {"consumer.heartbeat.interval.ms": "3000"}
    altered(m, "g", {}, None, incremental=False)   # AlterConfigs: the overrides become exactly the set
    assert m.group_configs("g") == {} and m.state().group_configs == {}


@pytest.mark.parametrize("set_, needle", [
    ({"consumer.session.timeout.ms": "1000"}, "greater than or equal to group.consumer.min.session.timeout.ms"),
    ({"consumer.session.timeout.ms": "60001"}, "less than or equal to group.consumer.max.session.timeout.ms"),
    ({"consumer.heartbeat.interval.ms": "999"}, "group.consumer.min.heartbeat.interval.ms"),
    ({"consumer.heartbeat.interval.ms": "15001"}, "group.consumer.max.heartbeat.interval.ms"),
    ({"consumer.session.timeout.ms": "ten"}, "Not a number"),
    ({"share.auto.offset.reset": "middle"}, "must be one of"),
    ({"share.record.lock.duration.ms": "100"}, "group.share.min.record.lock.duration.ms"),
    ({"session.timeout.ms": "50000"}, "Unknown group config name: session.timeout.ms"),
])
def test_invalid_values_are_invalid_config(set_, needle):
    e = refusal(MetadataMachine(), "g", set_)
    assert e.error_code == E.INVALID_CONFIG and needle in e.message


def test_refusals_leave_the_group_unchanged():
    m = altered(MetadataMachine(), "g", {"consumer.session.timeout.ms": "50000"})
    e = refusal(m, "g", {"consumer.heartbeat.interval.ms": "2000"}, ["consumer.heartbeat.interval.ms"])
    assert e.error_code == E.INVALID_REQUEST
    assert refusal(m, "g", None, ["no.such"]).error_code == E.INVALID_CONFIG
    assert refusal(m, "", {"consumer.session.timeout.ms": "50000"}).error_code == E.INVALID_REQUEST
    assert m.group_configs("g") == {"consumer.session.timeout.ms": "50000"}


def test_values_are_normalised_and_share_configs_kept():
    m = altered(MetadataMachine(), "g", {"share.auto.offset.reset": "EARLIEST", "consumer.session.timeout.ms": " 50000"})
    assert m.group_configs("g") == {"share.auto.offset.reset": "earliest", "consumer.session.timeout.ms": "50000"}


def test_session_settings_fall_back_to_the_brokers():
    assert session_settings({}, 1000, 45000) == (1000, 45000)
    assert session_settings({"consumer.heartbeat.interval.ms": "2000"}, 1000, 45000) == (2000, 45000)
    assert session_settings({"consumer.session.timeout.ms": "50000"}, 1000, 45000) == (1000, 50000)


def test_state_round_trip_and_preview_do_not_share_dicts():
    m = altered(MetadataMachine(), "g", {"consumer.session.timeout.ms": "50000"})
    copy = MetadataMachine()
    copy.restore(m.state().to_dict())
    assert copy.group_configs("g") == {"consumer.session.timeout.ms": "50000"}
    preview = m.preview(m.alter_group_configs("g", {"consumer.session.timeout.ms": "55000"}))
    assert preview.group_configs("g") == {"consumer.session.timeout.ms": "55000"}
    assert m.group_configs("g") == {"consumer.session.timeout.ms": "50000"}
