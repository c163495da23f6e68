"""A connection's replies leave in request order; Produce requests pipelined behind a waiting
acks=all one, completed together by one high-watermark move, go out in one send; held replies
are sent before a later immediate one, before a file reply, and before the connection closes."""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace

from sandbox.broker.config import DEFAULT_LISTENER
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.server import Connection
from helpers import feed_protocol
from test_handlers_inprocess import broker  # noqa: F401  (the fixture)


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name):
        return None

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def produce_frame(n: int) -> bytes:
    return b"\x00\x00" + bytes([n])          # api key 0 (Produce)


def metadata_frame(n: int) -> bytes:
    return b"\x00\x03" + bytes([n])          # api key 3: answered at once


def connection(loop, replication: asyncio.Future):
    async def waits(n: int) -> bytes:
        await replication                   # acks=all: until the high watermark moves
        return b"reply-%d;" % n

    def dispatch(frame, peer, listener):
        key, n = frame[1], frame[2]
        if key == 0:
            return waits(n)
        return False if n == 255 else b"meta-%d;" % n

    return connect(loop, dispatch)


def connect(loop, dispatch, **server):
    """A Connection on a fake transport to a fake server answering with `dispatch` (and any
    other server attributes given, such as a frame_pool), its task started on `loop`."""
    server = SimpleNamespace(config=SimpleNamespace(max_request_bytes=8 << 20, listener=lambda name: None),
                             _conns=set(), _dispatch=dispatch, **server)
    conn, transport = Connection(server, "PLAINTEXT"), FakeTransport()

    async def made() -> None:   # the connection's task starts on the running loop
        conn.connection_made(transport)

    loop.run_until_complete(made())
    return conn, transport


def run(loop, steps: int = 5) -> None:
    for _ in range(steps):
        loop.run_until_complete(asyncio.sleep(0))


def test_pipelined_produce_replies_go_out_in_order_in_one_send():
    loop = asyncio.new_event_loop()
    try:
        replication = loop.create_future()
        conn, transport = connection(loop, replication)
        for n in (1, 2, 3):
            conn._push(produce_frame(n))
        run(loop)
        assert transport.sent == []                  # all three wait for their replicas
        replication.set_result(None)
        run(loop)
        assert transport.sent == [b"reply-1;reply-2;reply-3;"]
        conn._push(metadata_frame(4))                # nothing ahead: answered at once
        assert transport.sent[-1] == b"meta-4;"
    finally:
        loop.close()


def test_a_produce_answered_at_once_behind_a_waiting_one_is_sent_not_taken_for_a_request():
    """Found by confluent-kafka's own suite: behind an acks=all Produce waiting for its replicas,
    a Produce answered at once (acks=1, a refused one, an ISR of one) queued its encoded reply
    where requests wait, so the reply was dispatched as a request ("unsupported api_key=0
    version=157"), the connection closed and that reply was never sent."""
    loop = asyncio.new_event_loop()
    try:
        replication = loop.create_future()
        dispatched = []

        async def waits(n: int) -> bytes:
            await replication
            return b"reply-%d;" % n

        def dispatch(frame, peer, listener):
            dispatched.append(bytes(frame))
            n = frame[2]
            return waits(n) if n == 1 else b"\x00\x00now-%d;" % n   # a reply reads as api key 0

        conn, transport = connect(loop, dispatch)
        for n in (1, 2, 3):
            conn._push(produce_frame(n))
        run(loop)
        assert transport.sent == [] and not transport.closed   # 2 and 3 wait their turn behind 1
        replication.set_result(None)
        run(loop)
        assert b"".join(transport.sent) == b"reply-1;\x00\x00now-2;\x00\x00now-3;"
        assert dispatched == [produce_frame(n) for n in (1, 2, 3)] and not transport.closed
    finally:
        loop.close()


def test_a_held_reply_goes_before_an_immediate_one_and_before_the_close():
    loop = asyncio.new_event_loop()
    try:
        replication = loop.create_future()
        conn, transport = connection(loop, replication)
        conn._push(produce_frame(1))
        conn._push(produce_frame(2))
        run(loop)
        replication.set_result(None)
        # reply 1 is held (reply 2 is queued behind it); a reply sent now must follow both
        conn._out.append(b"held;")
        conn._send(b"now;")
        assert transport.sent == [b"held;now;"]
        conn._out.append(b"last;")
        conn.close()
        assert transport.sent[-1] == b"last;" and transport.closed
    finally:
        loop.close()


def test_a_pipelined_produce_settled_by_the_time_it_is_awaited_does_not_suspend(broker, monkeypatch):
    """The Produce requests queued behind a waiting acks=all one are awaited after it; their
    records are usually on the ISR by then, and they must complete in that same pass (no task,
    no loop turn) for their replies to leave together."""
    from sandbox.protocol.records import encode_batch
    from sandbox.protocol import errors as E
    broker.create_topic("t", 1)
    monkeypatch.setattr(broker.owner.replicas, "replicated", lambda key: True)   # as with followers
    answers = iter([None])                   # appended, not yet on the ISR; then it is
    monkeypatch.setattr(broker.owner.replicas, "acked", lambda key, offset, epoch=None: next(answers, E.NONE))
    frame = broker.frame(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": encode_batch(0, [b"v"])}]}]}, 7)
    pending = REGISTRY.dispatch(frame, broker.owner, "peer", DEFAULT_LISTENER)
    assert asyncio.iscoroutine(pending)
    try:
        pending.send(None)
        raise AssertionError("the settled Produce suspended")
    except StopIteration as done:
        assert done.value                    # the encoded reply, in the same step


def test_large_produce_requests_waiting_together_keep_their_bytes():
    """Large Produce requests are received into the broker's kept buffers; while earlier ones
    still wait for their replicas (holding views of their frames), later ones go into other
    buffers, never over them; once answered, their buffers are used again."""
    import struct

    from sandbox.protocol.buffers import BufferPool

    loop = asyncio.new_event_loop()
    try:
        replication = loop.create_future()

        async def waits(frame) -> bytes:
            await replication   # acks=all: the frame's records stay in use meanwhile
            return b"%d:%d;" % (frame[2], sum(frame[3:]) // frame[2])

        def dispatch(frame, peer, listener):
            return waits(memoryview(frame))

        pool = BufferPool(8)
        conn, transport = connect(loop, dispatch, frame_pool=pool)

        def feed(n: int, size: int = 400_000) -> None:   # api key 0, then n repeated
            feed_protocol(conn, struct.pack(">i", size) + b"\x00\x00" + bytes([n]) * (size - 2), 70_000)

        for n in (1, 2, 3):
            feed(n)
            run(loop)
        assert transport.sent == [] and pool.sizes() == [1 << 20] * 3   # three held, three buffers
        replication.set_result(None)
        run(loop)
        assert b"".join(transport.sent) == b"1:399997;2:399997;3:399997;"   # each its own bytes
        feed(4)
        run(loop)
        assert pool.sizes() == [1 << 20] * 3 and transport.sent[-1] == b"4:399997;"   # one used again
    finally:
        loop.close()


def test_a_large_produce_queued_behind_another_request_is_handled_in_its_turn():
    """Found by review: a large Produce in a kept buffer (a memoryview) that waits its turn in the
    queue (behind a Metadata request behind an acks=all Produce) was taken for a reply already
    started and its own bytes were sent back to the client."""
    import struct

    from sandbox.protocol.buffers import BufferPool

    loop = asyncio.new_event_loop()
    try:
        replication = loop.create_future()
        dispatched = []

        async def waits(n: int) -> bytes:
            await replication
            return b"reply-%d;" % n

        def dispatch(frame, peer, listener):
            dispatched.append((frame[1], frame[2]))
            return waits(frame[2]) if frame[1] == 0 else b"meta-%d;" % frame[2]

        conn, transport = connect(loop, dispatch, frame_pool=BufferPool(8))
        feed = functools.partial(feed_protocol, conn)
        feed(struct.pack(">i", 400_000) + b"\x00\x00\x01" + b"a" * 399_997)   # acks=all: waits
        run(loop)
        feed(struct.pack(">i", 3) + b"\x00\x03\x07")                          # Metadata: its turn
        feed(struct.pack(">i", 400_000) + b"\x00\x00\x02" + b"b" * 399_997)   # Produce behind it
        run(loop)
        replication.set_result(None)
        run(loop, 20)
        assert dispatched == [(0, 1), (3, 7), (0, 2)]
        assert b"".join(transport.sent) == b"reply-1;meta-7;reply-2;" and conn.queued == 0
    finally:
        loop.close()
