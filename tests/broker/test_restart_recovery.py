"""A real broker process survives SIGKILL, torn tails and a lost metadata journal without losing
acknowledged records; each repair is reported as a `repair` event line."""

from __future__ import annotations

import shutil

import pytest

from rawclient import RawClient
from sandbox.log.batch import build_batch, iter_records
from test_bad_input import create_topic, fetch, produce

pytestmark = pytest.mark.integration


def read_all(port: int, topic: str) -> list[bytes]:
    values = []
    offset = 0
    with RawClient(port) as c:
        for _ in range(1000):
            p = fetch(c, topic, offset)
            if not p.records:
                break
            for off, _ts, _k, v, _h in iter_records(p.records):
                if off >= offset:
                    values.append(v)
                    offset = off + 1
    return values


def test_sigkill_then_garbage_tail_is_repaired_and_acked_records_survive(broker):
    create_topic(broker.port, "j")
    with RawClient(broker.port) as c:
        for i in range(50):
            r = produce(c, "j", build_batch([(b"k", f"v{i}".encode())]), acks=-1)
            assert int(r.error_code) == 0
    broker.kill()
    seg = broker.data_dir / "j-0" / "00000000000000000000.log"
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x07garbage-tail-from-a-torn-write")
    broker.start()
    assert read_all(broker.port, "j") == [f"v{i}".encode() for i in range(50)]
    log = broker.log_text()
    assert "EVENT repair" in log and '"bytes": 38' in log, log[-2000:]
    with RawClient(broker.port) as c:  # appends continue right after the last good batch
        assert produce(c, "j", build_batch([(b"k", b"after")])).base_offset == 50


def _metadata(port: int, topic: str):
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

    with RawClient(port) as c:
        return c.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=topic),),
                                         allow_auto_topic_creation=False,
                                         include_topic_authorized_operations=False)).topics[0]


def test_lost_metadata_journal_does_not_lose_topics_on_disk(broker):
    """Put back from the folders on disk under the topic id clients knew (each folder's
    partition.metadata, in Kafka's format) and with leader epochs above those in its logs:
    under a new id clients would see the topic deleted and made again, and they ignore a leader
    whose epoch is older than one they knew."""
    create_topic(broker.port, "keep", partitions=3)
    with RawClient(broker.port) as c:
        for p in range(3):
            assert int(produce(c, "keep", build_batch([(b"k", b"x")]), partition=p).error_code) == 0
    before = _metadata(broker.port, "keep")
    text = (broker.data_dir / "keep-1" / "partition.metadata").read_text()
    assert text.startswith("version: 0\ntopic_id: ") and len(text.split()[-1]) == 22, text
    broker.stop()
    shutil.rmtree(broker.data_dir / "__metadata")
    broker.start()
    assert read_all(broker.port, "keep") == [b"x"]
    assert "EVENT topic-restored" in broker.log_text()
    after = _metadata(broker.port, "keep")
    assert len(after.partitions) == 3
    assert after.topic_id == before.topic_id
    assert min(p.leader_epoch for p in after.partitions) > max(p.leader_epoch for p in before.partitions)


def test_a_topic_on_disk_whose_id_is_unreadable_comes_back_under_the_id_another_folder_names_or_a_new_one(broker):
    create_topic(broker.port, "torn", partitions=2)
    with RawClient(broker.port) as c:
        assert int(produce(c, "torn", build_batch([(b"k", b"y")])).error_code) == 0
    before = _metadata(broker.port, "torn")
    for unreadable in (["torn-0"], ["torn-0", "torn-1"]):
        broker.stop()
        shutil.rmtree(broker.data_dir / "__metadata")
        for folder in unreadable:
            (broker.data_dir / folder / "partition.metadata").write_bytes(b"version: 0\ntopic_id: !!")
        broker.start()
        assert read_all(broker.port, "torn") == [b"y"]
        after = _metadata(broker.port, "torn")
        assert len(after.partitions) == 2
        # one folder still names the id clients knew: theirs; none does: a new one
        assert (after.topic_id == before.topic_id) == (len(unreadable) == 1), unreadable
        # the id is written back, for the next time
        text = (broker.data_dir / "torn-0" / "partition.metadata").read_text()
        assert text == (broker.data_dir / "torn-1" / "partition.metadata").read_text()


def test_clean_shutdown_flushes_and_checkpoints(broker):
    create_topic(broker.port, "c")
    with RawClient(broker.port) as c:
        produce(c, "c", build_batch([(b"k", b"v")]))
    assert broker.stop() == 0
    text = (broker.data_dir / "recovery-point-offset-checkpoint").read_text().split("\n")
    assert "c 0 1" in text
    assert not (broker.data_dir / ".lock").exists()
