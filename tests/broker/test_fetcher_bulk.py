"""A follower streaming a bulk load asks for larger, fewer fetches: after a fetch that brought
BULK_BYTES or more it asks with min_bytes BULK_MIN_BYTES and max_wait BULK_WAIT_MS (the leader
answers once that much has arrived, or after the wait); after a small or empty one it asks as
Kafka's replica fetcher does (min_bytes 1, max_wait 500 ms), so a trickle of acks=all writes is
never held back. In-process: a fake leader connection that records what each request asked."""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace

from sandbox.broker.replication import fetcher as fetcher_mod
from sandbox.protocol.fast_fetch import FetchableTopicResponse, FetchResponse, PartitionData


def _asked(frame: bytes) -> tuple[int, int, int]:
    """(replica id, max_wait, min_bytes) of an encoded Fetch v12 request frame."""
    pos = 4 + 8                                    # size, api key, version, correlation id
    (n,) = struct.unpack_from(">h", frame, pos)
    pos += 2 + max(n, 0) + 1                       # client id, header tags
    return struct.unpack_from(">iii", frame, pos)


class Leader:
    """Answers each fetch with the next size from `sizes` (bytes of records; 0: none)."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = list(sizes)
        self.asked: list[tuple[int, int, int]] = []
        self.host, self.port, self.connected = "127.0.0.1", 9, True

    async def call(self, encode, decode, timeout):
        self.asked.append(_asked(encode(len(self.asked) + 1, "replica-1")))
        if not self.sizes:
            await asyncio.sleep(3600)
        size = self.sizes.pop(0)
        part = PartitionData(0, 0, 10, 10, 0, None, -1, memoryview(b"x" * size) if size else None)
        return FetchResponse(0, 0, 0, (FetchableTopicResponse("t", (part,)),))

    def close(self) -> None:
        self.connected = False


def _fetch_with(sizes: list[int]) -> list[tuple[int, int, int]]:
    leader = Leader(sizes)
    appended: list[int] = []
    plog = SimpleNamespace(log_end_offset=0, log_start_offset=0, high_watermark=0, flush_failed=None,
                           replica=SimpleNamespace(latest_epoch=-1, high_watermark=0,
                                                   append=lambda records: appended.append(len(records))))
    info = SimpleNamespace(broker_id=2, listeners={"PLAINTEXT": None}, address=lambda name=None: ("127.0.0.1", 9))
    state = SimpleNamespace(node_id=1, partitions={("t", 0): plog}, storage_failing=False,
                            coordinator=SimpleNamespace(brokers=lambda: [info]))
    manager = SimpleNamespace(state=state, closed=False, connect=lambda host, port, cid: leader)

    async def main():
        f = fetcher_mod.ReplicaFetcher(manager, 2)
        f.add(("t", 0), 0)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if len(leader.asked) > len(sizes):
                break
        f.stop()

    asyncio.run(main())
    assert appended == [s for s in sizes if s]
    return leader.asked


def test_bulk_fetches_wait_for_more_and_a_trickle_does_not():
    big, small = fetcher_mod.BULK_BYTES, 100
    asked = _fetch_with([small, big, big, small, 0, big, 0])
    normal = (1, fetcher_mod.MAX_WAIT_MS, 1)
    bulk = (1, fetcher_mod.BULK_WAIT_MS, fetcher_mod.BULK_MIN_BYTES)
    assert asked == [normal, normal, bulk, bulk, normal, normal, bulk, normal]



def test_a_partition_answered_with_an_error_waits_alone_while_the_others_are_fetched(monkeypatch):
    """Kafka's fetcher delays only the partitions whose answer was an error: here partition 0's
    leader is not the leader yet (NOT_LEADER_OR_FOLLOWER), and partition 1 must go on being
    fetched at once rather than wait out the back-off with it."""
    monkeypatch.setattr(fetcher_mod, "BACKOFF_S", 30.0)   # far longer than the test runs
    asked: list[list[int]] = []
    real_encode = fetcher_mod.encode_fetch_request

    def encode(*args, topics, **kwargs):
        asked.append(sorted(p.partition for ps in topics.values() for p in ps))
        return real_encode(*args, topics=topics, **kwargs)

    monkeypatch.setattr(fetcher_mod, "encode_fetch_request", encode)

    class TwoPartitionLeader(Leader):
        async def call(self, encode, decode, timeout):
            encode(len(asked) + 1, "replica-1")
            if len(asked) > 6:
                await asyncio.sleep(3600)
            parts = [PartitionData(0, 6, -1, -1, -1, None, -1, None)]   # NOT_LEADER_OR_FOLLOWER
            parts.append(PartitionData(1, 0, 10, 10, 0, None, -1, memoryview(b"x" * 100)))
            return FetchResponse(0, 0, 0, (FetchableTopicResponse("t", tuple(parts)),))

    leader = TwoPartitionLeader([])
    appended: list[int] = []

    def plog():
        return SimpleNamespace(log_end_offset=0, log_start_offset=0, high_watermark=0,
                               replica=SimpleNamespace(latest_epoch=-1, high_watermark=0,
                                                       append=lambda records: appended.append(len(records))))

    info = SimpleNamespace(broker_id=2, listeners={"PLAINTEXT": None}, address=lambda name=None: ("127.0.0.1", 9))
    state = SimpleNamespace(node_id=1, partitions={("t", 0): plog(), ("t", 1): plog()}, storage_failing=False,
                            coordinator=SimpleNamespace(brokers=lambda: [info]))
    manager = SimpleNamespace(state=state, closed=False, connect=lambda host, port, cid: leader)

    async def main():
        f = fetcher_mod.ReplicaFetcher(manager, 2)
        f.add(("t", 0), 0)
        f.add(("t", 1), 0)
        for _ in range(400):
            await asyncio.sleep(0.005)
            if len(asked) > 6:
                break
        f.stop()

    asyncio.run(main())
    assert len(asked) > 6, asked   # with one back-off for the whole fetcher: one fetch, then 30 s of nothing
    assert asked[0] == [0, 1] and all(a == [1] for a in asked[1:7]), asked
    assert len(appended) >= 6
