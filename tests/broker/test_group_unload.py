"""A group coordinator whose `__consumer_offsets` partition is led elsewhere forgets the groups of
that partition, whatever their state, classic or KIP-848 (found by review: only empty classic
groups were dropped, so when the partition came back a zombie member's old generation or member
epoch was accepted and its commit overwrote the group's newer offset). In-process broker; the
leadership of the partition is moved away and back through the metadata the store reads."""

from __future__ import annotations

import pytest

import sandbox.broker.offsets_topic as offsets_topic
from sandbox.broker.internal_log import led_partitions as real_led
from sandbox.broker.internal_topics import OFFSETS_TOPIC
from sandbox.protocol import errors as E

from test_handlers_inprocess import broker  # noqa: F401 - the fixture


@pytest.fixture
def b(broker):
    broker.create_topic("t", 1)
    assert int(broker.call(10, 4, {"key_type": 0, "coordinator_keys": ["g"]}).coordinators[0].error_code) == E.NONE
    return broker


def commit(b, member: str, generation: int, offset: int) -> int:
    r = b.call(8, 9, {"group_id": "g", "generation_id_or_member_epoch": generation, "member_id": member,
                      "group_instance_id": None, "topics": [{"name": "t", "partitions": [
                          {"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1,
                           "committed_metadata": ""}]}]})
    return int(r.topics[0].partitions[0].error_code)


def committed(b) -> int:
    r = b.call(9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}],
                      "require_stable": False})
    return int(r.groups[0].topics[0].partitions[0].committed_offset)


def away_and_back(b, monkeypatch) -> None:
    offsets = b.owner.offsets
    index = offsets.partition_for("g")
    shift = {"away": True, "bump": 0}

    def led(state, name):
        out = real_led(state, name)
        if name == OFFSETS_TOPIC and index in out:
            if shift["away"]:
                del out[index]
            else:
                out[index] += shift["bump"]
        return out

    monkeypatch.setattr(offsets_topic, "led_partitions", led)
    offsets.on_metadata()                 # led elsewhere now
    assert not offsets.leads("g")
    assert "g" not in b.owner.groups.machine.groups and "g" not in b.owner.groups.consumer.machine.groups
    shift.update(away=False, bump=1)
    offsets.on_metadata()                 # and back here, in a later leader epoch
    assert offsets.leads("g")


def test_a_consumer_group_member_from_before_cannot_commit_after_the_partition_comes_back(b, monkeypatch):
    beat = {"group_id": "g", "member_id": "zombie-member-00000001", "member_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout": 30000, "subscribed_topic_names": ["t"],
            "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []}
    first = b.call(68, 1, beat)
    assert int(first.error_code) == E.NONE
    assert commit(b, beat["member_id"], first.member_epoch, 10) == E.NONE
    away_and_back(b, monkeypatch)
    assert commit(b, "", -1, 50) == E.NONE          # the group moved on meanwhile (an admin's commit here)
    assert commit(b, beat["member_id"], first.member_epoch, 10) in (E.UNKNOWN_MEMBER_ID, E.ILLEGAL_GENERATION,
                                                                  E.STALE_MEMBER_EPOCH)
    assert committed(b) == 50


def test_a_classic_member_of_an_old_generation_cannot_commit_after_the_partition_comes_back(b, monkeypatch):
    def join(member_id=""):
        return b.call(11, 5, {"group_id": "g", "session_timeout": 30000, "rebalance_timeout": 10000,
                              "member_id": member_id, "group_instance_id": None, "protocol_type": "consumer",
                              "protocols": [{"name": "range", "metadata": b"m"}]})
    member = join().member_id
    generation = join(member).generation_id
    sync = b.call(14, 5, {"group_id": "g", "generation_id": generation, "member_id": member,
                          "protocol_type": "consumer", "protocol_name": "range",
                          "assignments": [{"member_id": member, "assignment": b"x"}]})
    assert int(sync.error_code) == E.NONE
    assert commit(b, member, generation, 10) == E.NONE
    away_and_back(b, monkeypatch)
    assert commit(b, member, generation, 20) in (E.UNKNOWN_MEMBER_ID, E.ILLEGAL_GENERATION)
    assert committed(b) == 10
