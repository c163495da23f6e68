"""The cluster id clients are told survives a destroyed coordinator journal: the fresh journal
makes a new history id (brokers following the old history start over), and the supervisor's
restore puts back the id clients knew, which Metadata and DescribeCluster then answer. The
real-stack case is in tests/integration/test_self_healing.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from inprocess import InProcess
from coordinator.test_handlers_inprocess import coord  # noqa: F401  (the fixture: a coordinator server in-process)
from sandbox.coordinator import Coordinator, CoordinatorError, MetadataMachine
from sandbox.coordinator.model import ClusterState
from sandbox.protocol import errors as E
from sandbox.protocol.extensions import RESTORE_CLUSTER_ID


def fresh(history: str = "fresh-history") -> MetadataMachine:
    m = MetadataMachine()
    for r in m.set_cluster_id(history):
        m.apply(r)
    return m


def restored(m: MetadataMachine, cluster_id: str) -> MetadataMachine:
    for r in m.restore_public_cluster_id(cluster_id):
        m.apply(r)
    return m


def test_clients_are_told_the_restored_id_while_the_history_keeps_its_own():
    m = fresh()
    assert m.public_cluster_id == "fresh-history"
    restored(m, "Old-Cluster_1d")
    assert (m.public_cluster_id, m.cluster_id) == ("Old-Cluster_1d", "fresh-history")
    # a snapshot and its JSON form keep both (brokers' mirrors load snapshots)
    again = MetadataMachine()
    again.restore(ClusterState.from_dict(m.state().to_dict()))
    assert (again.public_cluster_id, again.cluster_id) == ("Old-Cluster_1d", "fresh-history")
    # an older snapshot without the field: the history id is the public one
    older = {k: v for k, v in m.state().to_dict().items() if k != "public_cluster_id"}
    again.restore(older)
    assert again.public_cluster_id == "fresh-history"


def test_a_restore_is_idempotent_and_the_latest_wins():
    m = restored(fresh(), "old-id")
    assert m.restore_public_cluster_id("old-id") == []   # a retried restore changes nothing
    assert fresh("same").restore_public_cluster_id("same") == []   # the history's own: nothing to do
    # whoever set another one first, the supervisor's restore still lands (else it stayed pending)
    assert restored(m, "another-id").public_cluster_id == "another-id"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "semi;colon", None, 7])
def test_a_malformed_cluster_id_is_refused_in_one_sentence(bad):
    with pytest.raises(CoordinatorError) as info:
        fresh().restore_public_cluster_id(bad)
    assert info.value.error_code == E.INVALID_REQUEST and "is not a cluster id" in info.value.message


def test_the_restored_id_survives_a_coordinator_restart(tmp_path: Path):
    c = Coordinator(tmp_path / "journal")
    history = c.cluster_id
    c.restore_cluster_id("kept-id")
    c.close()
    c = Coordinator(tmp_path / "journal")
    try:
        assert (c.public_cluster_id, c.cluster_id) == ("kept-id", history)
    finally:
        c.close()


def alter_cluster(c: InProcess, configs: list[dict], validate_only: bool = False):
    resp = c.call(44, 1, {"validate_only": validate_only, "resources": [
        {"resource_type": 4, "resource_name": "", "configs": configs}]})
    return resp.responses[0]


def test_the_coordinator_takes_the_restore_over_incremental_alter_configs(coord):
    history = coord.owner.coordinator.cluster_id
    ask = {"name": RESTORE_CLUSTER_ID, "config_operation": 0, "value": "Kept_Cluster-Id"}
    assert int(alter_cluster(coord, [ask], validate_only=True).error_code) == E.NONE
    assert coord.owner.coordinator.public_cluster_id == history   # validate_only changes nothing
    assert int(alter_cluster(coord, [ask]).error_code) == E.NONE
    md = coord.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                            "include_topic_authorized_operations": False})
    assert md.cluster_id == "Kept_Cluster-Id"
    described = coord.call(60, 0, {"include_cluster_authorized_operations": False})
    assert described.cluster_id == "Kept_Cluster-Id"
    assert coord.owner.coordinator.cluster_id == history   # brokers still follow this history
    # a bad id is one sentence; the key next to any other is an ordinary (refused) broker config
    bad = alter_cluster(coord, [{**ask, "value": "no spaces please"}])
    assert int(bad.error_code) == E.INVALID_REQUEST and "is not a cluster id" in bad.error_message
    mixed = alter_cluster(coord, [ask, {"name": "log.retention.ms", "config_operation": 0, "value": "1"}])
    assert int(mixed.error_code) == E.INVALID_REQUEST and RESTORE_CLUSTER_ID not in (mixed.error_message or "")
