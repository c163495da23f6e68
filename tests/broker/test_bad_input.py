"""Bad input never takes the broker down or touches the journal; each gets the protocol's answer.

Runs against a real `sandbox broker` process with raw frames on the wire.
"""

from __future__ import annotations

import datetime
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from helpers import api_versions_ok
from rawclient import RawClient
from sandbox.log.batch import build_batch

pytestmark = pytest.mark.integration

CORRUPT_MESSAGE, UNKNOWN_TOPIC, MESSAGE_TOO_LARGE, OUT_OF_ORDER = 2, 3, 10, 45


def create_topic(port: int, name: str, partitions: int = 1, configs=()) -> None:
    from kio.schema.create_topics.v7.request import CreatableTopicConfig

    with RawClient(port) as c:
        resp = c.request(CreateTopicsRequest(
            topics=(CreatableTopic(name=name, num_partitions=partitions, replication_factor=1, assignments=(),
                                   configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in configs)),),
            timeout=datetime.timedelta(seconds=5), validate_only=False))
        assert int(resp.topics[0].error_code) == 0, resp


def produce(c: RawClient, topic: str, records: bytes, partition: int = 0, acks: int = 1):
    resp = c.request(ProduceRequest(transactional_id=None, acks=acks, timeout=datetime.timedelta(seconds=5),
                                    topic_data=(TopicProduceData(name=topic, partition_data=(
                                        PartitionProduceData(index=partition, records=records),)),)))
    return resp.responses[0].partition_responses[0]


def fetch(c: RawClient, topic: str, offset: int, max_wait_ms: int = 0):
    resp = c.request(FetchRequest(
        cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(milliseconds=max_wait_ms), min_bytes=1,
        max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
        topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=1 << 20),)),),
        forgotten_topics_data=(), rack_id=""))
    return resp.responses[0].partitions[0]


def still_serving(broker) -> None:
    assert api_versions_ok(broker.port), "broker stopped answering after bad input"
    assert broker.proc.poll() is None, "broker process died"


def segment_bytes(broker, topic: str) -> int:
    return sum(p.stat().st_size for p in (broker.data_dir / f"{topic}-0").glob("*.log"))


def test_garbage_and_unknown_api_keys_close_only_that_connection(broker):
    bystander = RawClient(broker.port)
    with RawClient(broker.port) as bad:
        bad.send_raw(struct.pack(">i", 12) + struct.pack(">hhi", 999, 0, 1) + b"\xff\xff\xff\xff")
        assert bad.is_closed()
    with RawClient(broker.port) as bad:
        bad.send_raw(struct.pack(">i", 10) + struct.pack(">hhi", 3, 77, 1) + b"\x00\x00")
        assert bad.is_closed()
    with RawClient(broker.port) as bad:  # truncated header inside a complete frame
        bad.send_raw(struct.pack(">i", 3) + b"\x00\x03\x00")
        assert bad.is_closed()
    with RawClient(broker.port) as bad:  # a frame cut short, then the client goes away
        bad.send_raw(struct.pack(">i", 500) + b"\x00\x12\x00\x00")
    resp = bystander.request(ApiVersionsRequest(client_software_name="b", client_software_version="1"))
    assert int(resp.error_code) == 0
    bystander.close()
    still_serving(broker)
    log = broker.log_text()
    assert "unsupported api_key=999" in log and "127.0.0.1:" in log
    assert "unsupported api_key=3 version=77" in log


def test_size_prefix_over_the_limit_is_refused(broker_factory):
    broker = broker_factory(options=["socket.request.max.bytes=1048576"])
    with RawClient(broker.port) as bad:
        bad.send_raw(struct.pack(">i", 2 * 1048576))
        assert bad.is_closed()
    with RawClient(broker.port) as bad:
        bad.send_raw(struct.pack(">i", -7))
        assert bad.is_closed()
    still_serving(broker)
    assert "socket.request.max.bytes" in broker.log_text()


def test_api_versions_too_new_gets_v0_answer_with_the_full_list(broker):
    from sandbox.protocol import decode_response

    with RawClient(broker.port) as c:
        body = struct.pack(">hhih", 18, 99, 5, 1) + b"x"
        c.send_raw(struct.pack(">i", len(body)) + body)
        corr, resp = decode_response(c.recv_frame(), 18, 0)
    assert corr == 5 and int(resp.error_code) == 35
    keys = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    for required in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 32, 33, 37, 42, 44, 60):
        assert required in keys, f"api key {required} missing from ApiVersions"
    assert keys[18] == (0, 4)
    assert keys[0][0] == 0  # Produce advertised from v0 for librdkafka < 2.9 compression


def test_unknown_topic_answers(broker_factory):
    broker = broker_factory(options=["auto.create.topics.enable=false"])
    with RawClient(broker.port) as c:
        md = c.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="nope"),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        assert int(md.topics[0].error_code) == UNKNOWN_TOPIC
        p = produce(c, "nope", build_batch([(b"k", b"v")]))
        assert int(p.error_code) == UNKNOWN_TOPIC
        f = fetch(c, "nope", 0)
        assert int(f.error_code) == UNKNOWN_TOPIC
    assert not (broker.data_dir / "nope-0").exists()
    still_serving(broker)


def test_bad_crc_and_too_large_batches_leave_the_journal_untouched(broker):
    create_topic(broker.port, "strict", configs=[("max.message.bytes", "2000")])
    with RawClient(broker.port) as c:
        good = produce(c, "strict", build_batch([(b"k", b"v1")]))
        assert int(good.error_code) == 0 and good.base_offset == 0
        before = segment_bytes(broker, "strict")
        bad = bytearray(build_batch([(b"k", b"v2")]))
        bad[-1] ^= 0xFF  # payload byte flipped: CRC no longer matches
        r = produce(c, "strict", bytes(bad))
        assert int(r.error_code) == CORRUPT_MESSAGE
        big = build_batch([(b"k", b"x" * 5000)])
        r = produce(c, "strict", big)
        assert int(r.error_code) == MESSAGE_TOO_LARGE
        r = produce(c, "strict", build_batch([(b"k", b"v3")])[:-3])  # truncated batch
        assert int(r.error_code) == CORRUPT_MESSAGE
        assert segment_bytes(broker, "strict") == before
        nxt = produce(c, "strict", build_batch([(b"k", b"v4")]))
        assert int(nxt.error_code) == 0 and nxt.base_offset == 1
        f = fetch(c, "strict", 0)
        assert f.high_watermark == 2
    still_serving(broker)


def test_idempotent_retry_gets_original_offset_and_gaps_are_refused(broker):
    create_topic(broker.port, "idem")
    with RawClient(broker.port) as c:
        init = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
                                               producer_id=-1, producer_epoch=-1))
        pid, epoch = init.producer_id, init.producer_epoch
        assert pid >= 0
        b0 = build_batch([(b"a", b"0"), (b"a", b"1")], producer_id=pid, producer_epoch=epoch, base_sequence=0)
        first = produce(c, "idem", b0, acks=-1)
        again = produce(c, "idem", b0, acks=-1)
        assert int(first.error_code) == 0 and int(again.error_code) == 0
        assert again.base_offset == first.base_offset == 0
        gap = build_batch([(b"a", b"9")], producer_id=pid, producer_epoch=epoch, base_sequence=5)
        assert int(produce(c, "idem", gap, acks=-1).error_code) == OUT_OF_ORDER
        nxt = build_batch([(b"a", b"2")], producer_id=pid, producer_epoch=epoch, base_sequence=2)
        r = produce(c, "idem", nxt, acks=-1)
        assert int(r.error_code) == 0 and r.base_offset == 2
        assert fetch(c, "idem", 0).high_watermark == 3
        second = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
                                                 producer_id=-1, producer_epoch=-1))
        assert second.producer_id != pid


def test_long_poll_fetch_wakes_on_append(broker):
    create_topic(broker.port, "poll")
    import threading

    result = {}

    def waiter():
        with RawClient(broker.port) as c:
            t0 = time.monotonic()
            result["p"] = fetch(c, "poll", 0, max_wait_ms=5000)
            result["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.5)
    with RawClient(broker.port) as c:
        assert int(produce(c, "poll", build_batch([(b"k", b"wake")])).error_code) == 0
    th.join(10)
    assert result["p"].records, "long poll returned without the new data"
    # woke on the append, well before max.wait.ms (5 s) ran out
    assert result["elapsed"] < 4.5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 70), st.integers(-1, 20), st.binary(max_size=200))
def test_fuzzed_frames_never_take_the_broker_down(broker, key, version, tail):
    with RawClient(broker.port, timeout=3) as c:
        body = struct.pack(">hhi", key, version, 1) + tail
        c.send_raw(struct.pack(">i", len(body)) + body)
        c.sock.settimeout(3)
        try:
            c.sock.recv(65536)
        except OSError:
            pass
    still_serving(broker)


def _batch_with(codec: int, payload: bytes, values=(b"v",)) -> bytes:
    """A batch whose codec bits say `codec` and whose body is `payload` (CRC made to match)."""
    from sandbox.log.batch import HEADER_SIZE, compute_crc

    plain = bytearray(build_batch([(b"k", v) for v in values]))
    out = bytearray(plain[:HEADER_SIZE]) + payload
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">h", out, 21, codec)
    struct.pack_into(">I", out, 17, compute_crc(out, 0, len(out)))
    return bytes(out)


def _produce_many(c: RawClient, topic: str, parts: dict[int, bytes], version_cls=ProduceRequest):
    resp = c.request(version_cls(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                                 topic_data=(TopicProduceData(name=topic, partition_data=tuple(
                                     PartitionProduceData(index=i, records=r) for i, r in parts.items())),)))
    return {int(p.index): p for p in resp.responses[0].partition_responses}


def test_produce_v3_plus_takes_one_batch_per_partition_as_kafka(broker):
    """Found by review: two batches for one partition were taken; with the first a retry's
    duplicate, the answer was its old offset and the second batch was dropped, acknowledged."""
    create_topic(broker.port, "one-batch")
    first = build_batch([(b"k", b"a")], producer_id=7000, producer_epoch=0, base_sequence=0)
    second = build_batch([(b"k", b"b")], producer_id=7000, producer_epoch=0, base_sequence=1)
    with RawClient(broker.port) as c:
        assert int(produce(c, "one-batch", first).error_code) == 0
        r = produce(c, "one-batch", first + second)
        assert int(r.error_code) == 87 and "exactly one record batch" in r.error_message   # INVALID_RECORD
        r = produce(c, "one-batch", b"")
        assert int(r.error_code) == 87 and "at least one record batch" in r.error_message
        assert int(produce(c, "one-batch", second).error_code) == 0   # sequence 1 is next: nothing was lost
        assert fetch(c, "one-batch", 0).high_watermark == 2
    still_serving(broker)


def test_zstd_below_produce_v7_is_unsupported_compression_type(broker):
    import cramjam
    from kio.schema.produce.v5.request import (PartitionProduceData as P5, ProduceRequest as R5,
                                               TopicProduceData as T5)
    from sandbox.log.batch import HEADER_SIZE

    create_topic(broker.port, "zstd-old")
    plain = build_batch([(b"k", b"v")])
    batch = _batch_with(4, bytes(cramjam.zstd.compress(bytes(plain[HEADER_SIZE:]))))
    with RawClient(broker.port) as c:
        resp = c.request(R5(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
            T5(name="zstd-old", partition_data=(P5(index=0, records=batch),)),)))
        assert int(resp.responses[0].partition_responses[0].error_code) == 76   # UNSUPPORTED_COMPRESSION_TYPE
        assert int(produce(c, "zstd-old", batch).error_code) == 0               # v9 takes it
    still_serving(broker)


def test_unreadable_compressed_records_are_that_partitions_error_and_nothing_else_is_repeated(broker):
    """Found by review: a gzip batch that is not gzip (CRC right) on a compacted topic raised out
    of the handler; the connection closed after the request's other partition was written, so the
    client's resend wrote that one again. And an unknown codec (7) was stored for readers to fail on."""
    create_topic(broker.port, "mixed", partitions=3, configs=[("cleanup.policy", "compact")])
    with RawClient(broker.port) as c:
        got = _produce_many(c, "mixed", {0: build_batch([(b"k", b"good")]), 1: _batch_with(1, b"not gzip at all"),
                                         2: _batch_with(7, b"whatever")})
        assert int(got[0].error_code) == 0
        assert int(got[1].error_code) == CORRUPT_MESSAGE and "cannot be read" in got[1].error_message
        assert int(got[2].error_code) == CORRUPT_MESSAGE and "Unknown compression type id: 7" in got[2].error_message
        assert not c.is_closed()
        assert fetch(c, "mixed", 0).high_watermark == 1
    assert segment_bytes(broker, "mixed") > 0
    for p in (1, 2):
        assert sum(f.stat().st_size for f in (broker.data_dir / f"mixed-{p}").glob("*.log")) == 0
    still_serving(broker)


def test_a_topic_whose_retention_bytes_is_below_minus_one_does_not_stop_the_others(broker):
    """Found by review: retention.bytes=-5 (any negative is no limit, as Kafka's) was taken by the
    coordinator and refused by the log config: every later metadata change raised, so no topic
    made afterwards was created on the broker."""
    create_topic(broker.port, "neg", configs=[("retention.bytes", "-5")])
    create_topic(broker.port, "after")
    with RawClient(broker.port) as c:
        for topic in ("neg", "after"):
            assert int(produce(c, topic, build_batch([(b"k", b"v")])).error_code) == 0, topic
    still_serving(broker)
