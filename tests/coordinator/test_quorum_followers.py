"""The coordinator's count of the brokers following the journal it serves now (DescribeQuorum's
observers), which the supervisor waits on before it puts back a destroyed journal's topics: the
fresh journal answers with the cluster id clients knew, so that id can no longer tell a broker
still on the destroyed journal's metadata."""
from __future__ import annotations

from coordinator.server_helpers import ThreadedCoordinator

from sandbox.client import KafkaClient
from sandbox.client.base import FETCH
from sandbox.health.status import coordinator_followers
from sandbox.protocol.errors import INCONSISTENT_CLUSTER_ID


def _fetch(address, replica: int, history: str | None, offset: int) -> int:
    """One metadata Fetch as a broker's mirror sends it; its error code."""
    with KafkaClient([address], timeout=2.0) as c:
        resp, _ = c._send(address, FETCH, {
            "cluster_id": history, "replica_id": replica, "max_wait": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": "__cluster_metadata", "partitions": [{
                "partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        return int(resp.error_code)


def test_only_brokers_that_fetched_all_of_the_journal_with_its_history_id_count(tmp_path):
    coord = ThreadedCoordinator(tmp_path / "j").start()
    try:
        address = ("127.0.0.1", coord.port)
        history = coord.coordinator.cluster_id
        end = coord.server.feed.high_watermark
        assert end > 0
        # a broker still on a destroyed journal's metadata: refused, and not counted
        assert _fetch(address, 1, "the-destroyed-journal", end) == INCONSISTENT_CLUSTER_ID
        # a broker reloading the metadata from the start: known, not caught up yet
        assert _fetch(address, 2, None, 0) == 0
        assert coordinator_followers(address) == (coord.coordinator.public_cluster_id, set())
        assert _fetch(address, 2, history, end) == 0
        assert _fetch(address, 3, history, end) == 0
        assert coordinator_followers(address)[1] == {2, 3}
        assert _fetch(address, 5, None, end) == 0           # from the end, but without the history id
        assert 5 not in coordinator_followers(address)[1]
        # once caught up, a broker stays counted while it fetches what is new
        assert _fetch(address, 2, history, 0) == 0
        assert coordinator_followers(address)[1] == {2, 3}
    finally:
        coord.stop()


def test_a_fetch_past_the_end_or_without_the_history_id_is_not_caught_up():
    """Review: a broker that applied a record the journal then lost (cut as a torn tail at the
    coordinator's restart) asks past the end, gets OFFSET_OUT_OF_RANGE and reloads; counted as
    caught up meanwhile, it would answer Metadata with a record the coordinator does not have."""
    from sandbox.coordinator.quorum import Observers

    o = Observers()
    o.fetched(2, 50, 40, 1000)                         # past the end
    o.fetched(3, 40, 40, 1000, same_history=False)     # from the end, but reloading (no id yet)
    o.fetched(4, 40, 40, 1000)
    assert {s["replica_id"]: s["last_caught_up_timestamp"] for s in o.states(1000)} == {2: -1, 3: -1, 4: 1000}
    o.fetched(4, 30, 40, 2000)                         # behind again: still counted from when it had it all
    assert o.states(2000)[-1]["last_caught_up_timestamp"] == 1000
