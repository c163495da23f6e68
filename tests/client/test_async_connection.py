"""The async Kafka connection services use to talk to each other: answers, timeouts, refused
connections, replies to another request, and one retry when a kept connection turns out dead."""
from __future__ import annotations

import asyncio

import pytest

from helpers import feed_protocol
from sandbox.client.async_connection import AsyncConnection, ExchangeFailed
from sandbox.protocol import (
    RequestHeader, build, decode_request, encode_request, encode_response, frame_size, request_class, response_class,
)
from sandbox.protocol.errors import NETWORK_EXCEPTION, REQUEST_TIMED_OUT

API_VERSIONS = build(request_class(18, 0), {})


async def serve(mode: str):
    """A node on a free port that answers ApiVersions v0 ("ok"), never answers ("silent"), answers
    with a wrong correlation id ("wrong"), or closes every connection after its first answer ("once")."""
    async def handle(reader, writer):
        try:
            while True:
                frame = await reader.readexactly(frame_size(await reader.readexactly(4)))
                if mode == "silent":
                    await asyncio.sleep(10)
                header, _ = decode_request(frame)
                corr = header.correlation_id + (1 if mode == "wrong" else 0)
                writer.write(encode_response(corr, build(response_class(18, 0), {"error_code": 0, "api_keys": []})))
                await writer.drain()
                if mode == "once":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_answers_timeouts_and_wrong_replies():
    async def main():
        ok, ok_port = await serve("ok")
        silent, silent_port = await serve("silent")
        wrong, wrong_port = await serve("wrong")
        try:
            conn = AsyncConnection("127.0.0.1", ok_port, "t", 1.0)
            assert int((await conn.request(API_VERSIONS, 1.0)).error_code) == 0
            assert int((await conn.request(API_VERSIONS, 1.0)).error_code) == 0 and conn.connected
            conn.close()
            slow = AsyncConnection("127.0.0.1", silent_port, "t", 1.0)
            with pytest.raises(ExchangeFailed) as e:
                await slow.request(API_VERSIONS, 0.2)
            assert e.value.timed_out and e.value.error_code == REQUEST_TIMED_OUT and not slow.connected
            odd = AsyncConnection("127.0.0.1", wrong_port, "t", 1.0)
            with pytest.raises(ExchangeFailed) as e:
                await odd.request(API_VERSIONS, 1.0)
            assert not e.value.timed_out and "correlation id" in e.value.detail and not odd.connected
        finally:
            for s in (ok, silent, wrong):
                s.close()

    asyncio.run(main())


def test_refused_connection_and_one_retry_on_a_dead_kept_connection():
    async def main():
        server, port = await serve("once")
        try:
            conn = AsyncConnection("127.0.0.1", port, "t", 1.0)
            await conn.request(API_VERSIONS, 1.0)
            await asyncio.sleep(0.05)  # the node closed the kept connection meanwhile
            assert int((await conn.request(API_VERSIONS, 1.0)).error_code) == 0   # asked again, fresh
        finally:
            server.close()
            await server.wait_closed()
        gone = AsyncConnection("127.0.0.1", port, "t", 1.0)
        with pytest.raises(ExchangeFailed) as e:
            await gone.request(API_VERSIONS, 1.0)
        assert not e.value.timed_out and e.value.error_code == NETWORK_EXCEPTION
        assert f"127.0.0.1:{port} is not available" in e.value.message

    asyncio.run(main())


def test_a_reply_in_pieces_and_a_reply_cut_short():
    """Replies arrive a few bytes at a time and are reassembled; a reply cut mid-frame is an
    answer that started (no_answer false: not asked again) and closes the connection."""
    async def main():
        reply = encode_response(1, build(response_class(18, 0), {"error_code": 0, "api_keys": []}))

        async def handle(reader, writer):
            try:
                while True:
                    frame = await reader.readexactly(frame_size(await reader.readexactly(4)))
                    header, _ = decode_request(frame)
                    out = encode_response(header.correlation_id,
                                          build(response_class(18, 0), {"error_code": 0, "api_keys": []}))
                    if header.client_id == "cut":
                        writer.write(out[:len(out) - 2])
                        await writer.drain()
                        break
                    for i in range(0, len(out), 3):
                        writer.write(out[i:i + 3])
                        await writer.drain()
                        await asyncio.sleep(0.001)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            conn = AsyncConnection("127.0.0.1", port, "t", 1.0)
            seen = []

            def decode(frame, corr):
                seen.append((bytes(frame), corr))
                return "decoded"
            got = await conn.call(lambda corr, cid: encode_request_frame(corr, cid), decode, 1.0)
            assert got == "decoded" and seen[0][0][4:] == reply[8:] and seen[0][1] == 1
            assert int((await conn.request(API_VERSIONS, 1.0)).error_code) == 0
            cut = AsyncConnection("127.0.0.1", port, "cut", 1.0)
            with pytest.raises(ExchangeFailed) as e:
                await cut.request(API_VERSIONS, 1.0)
            assert not e.value.timed_out and not e.value.no_answer and not cut.connected
        finally:
            server.close()

    asyncio.run(main())


def encode_request_frame(corr: int, client_id: str) -> bytes:
    return encode_request(RequestHeader(18, 0, corr, client_id), API_VERSIONS)


def test_frames_reassembled_from_any_split():
    """Reply frames fed to the protocol in pieces of any size, several in one piece or one frame
    over many (larger than its scratch buffer), come out whole and in order."""
    import random
    import struct

    from sandbox.client.async_connection import _Frames

    rnd = random.Random(7)
    bodies = [bytes([i]) * n for i, n in enumerate([4, 5, 70_000, 4, 300, 200_000, 9])]
    stream = b"".join(struct.pack(">i", len(b)) + b for b in bodies)
    for _ in range(30):
        proto, pos = _Frames(), 0
        while pos < len(stream):
            buf = proto.get_buffer(-1)
            assert len(buf) > 0
            n = min(len(buf), rnd.choice([1, 3, 4, 7, 1000, 70_000, 500_000]), len(stream) - pos)
            buf[:n] = stream[pos:pos + n]
            proto.buffer_updated(n)
            pos += n
        assert [bytes(f) for f in proto._done] == bodies


def test_large_frames_reuse_one_buffer_only_once_nothing_holds_the_last():
    """A large reply is received into the buffer the previous one used once no view of that one
    is alive; a reply still held (a view into it kept by a caller) is never overwritten."""
    import struct

    from sandbox.client.async_connection import _Frames

    proto = _Frames()
    size = 300_000
    frames = [bytes([i]) * size for i in range(1, 5)]
    feed_protocol(proto, struct.pack(">i", size) + frames[0])
    first = proto._done.popleft()
    first_buffer = id(first.obj)   # not the object: a reference of the test's own would count
    assert bytes(first) == frames[0]
    del first                                    # the caller is done with it
    feed_protocol(proto, struct.pack(">i", size - 10) + frames[1][:size - 10])
    second = proto._done.popleft()
    assert id(second.obj) == first_buffer and bytes(second) == frames[1][:size - 10]
    held = second[100:200]                       # a caller keeps a view into the second reply
    del second
    feed_protocol(proto, struct.pack(">i", size) + frames[2])
    third = proto._done.popleft()
    assert isinstance(third, bytearray) and bytes(third) == frames[2]   # a buffer of its own
    assert bytes(held) == frames[1][100:200]     # not overwritten by the third reply
    del held, third
    feed_protocol(proto, struct.pack(">i", size) + frames[3])   # the kept buffer is free again: used
    fourth = proto._done.popleft()
    assert id(fourth.obj) == first_buffer and bytes(fourth) == frames[3]
    del fourth
    feed_protocol(proto, struct.pack(">i", 1000) + b"x" * 1000)     # small replies get their own
    small = proto._done.popleft()
    assert isinstance(small, bytearray) and bytes(small) == b"x" * 1000
    big = (1 << 20) + 1   # larger than the kept buffer (1 MiB): a larger one is kept instead
    feed_protocol(proto, struct.pack(">i", big) + b"y" * big)
    grown = proto._done.popleft()
    assert bytes(grown) == b"y" * big and len(grown.obj) == 2 << 20
    del grown
    huge = (2 << 20) + 1   # above KEEP_MAX: its own buffer, not kept
    feed_protocol(proto, struct.pack(">i", huge) + b"w" * huge)
    assert isinstance(proto._done.popleft(), bytearray) and proto._pool.sizes() == [2 << 20]


def test_a_large_reply_cut_short_reports_what_came():
    import struct

    from sandbox.client.async_connection import _Frames

    proto = _Frames()
    feed_protocol(proto, struct.pack(">i", 100_000) + b"z" * 70_000)
    proto.connection_lost(None)
    err = proto._done.popleft()
    assert isinstance(err, asyncio.IncompleteReadError)
    assert err.partial == struct.pack(">i", 100_000) + b"z" * 70_000 and err.expected == 100_004


def test_large_replies_through_a_real_connection_keep_what_a_caller_holds():
    """Over a socket: replies of 300 KB decoded by call(); one caller keeps a view of its reply
    while the next arrives, and still reads its own bytes after it."""
    import struct

    async def main():
        n = [0]

        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readexactly(8)
                    await reader.readexactly(frame_size(head[:4]) - 4)
                    corr = head[4:8]
                    n[0] += 1
                    body = corr + bytes([n[0]]) * 300_000
                    writer.write(struct.pack(">i", len(body)) + body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = AsyncConnection("127.0.0.1", port, "t", 1.0)

        def encode(corr, _cid):
            return struct.pack(">ii", 4, corr)

        try:
            kept = await conn.call(encode, lambda frame, corr: memoryview(frame)[4:], 1.0)   # held
            for i in range(2, 5):
                got = await conn.call(encode, lambda frame, corr: bytes(frame[4:8]), 1.0)
                assert got == bytes([i]) * 4
            assert bytes(kept) == bytes([1]) * 300_000   # never overwritten by replies 2-4
        finally:
            conn.close()
            server.close()

    asyncio.run(main())
