"""One asyncio Kafka connection to one node, for services that talk to other services (a broker
to the coordinator, a follower to its leader): one request in flight, (re)connects on demand,
closes itself on any failure, asks once more on a fresh connection when a kept one turns out dead.
Each reply is received straight into one buffer of its size (no stream buffer copies)."""

from __future__ import annotations

import asyncio
import collections
import struct
from typing import Any, Callable

from sandbox.protocol.buffers import BufferPool
from sandbox.protocol.errors import NETWORK_EXCEPTION, REQUEST_TIMED_OUT

from .connection import decode_reply, reply_size, request_frame
from .models import KafkaClientError


class ExchangeFailed(KafkaClientError):
    """No answer: `timed_out` when the node did not answer in time; `no_answer` when a kept
    connection was found dead before any byte of the reply came (the request never reached a
    live node, so asking again is safe); `detail` names the cause ("TypeName: text")."""

    def __init__(self, message: str, *, timed_out: bool, no_answer: bool = False, detail: str = "") -> None:
        super().__init__(message, REQUEST_TIMED_OUT if timed_out else NETWORK_EXCEPTION)
        self.timed_out, self.no_answer, self.detail = timed_out, no_answer, detail


class _Frames(asyncio.BufferedProtocol):
    """Reply frames as they arrive: the transport reads into a scratch buffer until a frame's
    4-byte size is known (and whatever of the frame came with it), then straight into a
    buffer of exactly that size: for a frame of 64 KiB to 2 MiB (a follower's Fetch answer while
    it keeps up) one kept buffer while the last frame received into it is no longer in use
    (sandbox.protocol.buffers; perf: page faults and memset were 5-8% of a follower's samples net
    of writes), else a bytearray of its own."""

    SCRATCH = 64 * 1024

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._scratch = bytearray(self.SCRATCH)
        self._held = 0                        # bytes in the scratch buffer not parsed yet
        self._body: bytearray | memoryview | None = None   # the frame being received, once its size is known
        self._pos = 0
        self._done: collections.deque = collections.deque()   # whole frames, or the error
        self._waiter: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None
        self._pool = BufferPool(1)            # the buffer mid-sized frames are received into

    def connection_made(self, transport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int):
        if self._body is None:
            return memoryview(self._scratch)[self._held:]
        return memoryview(self._body)[self._pos:]

    def buffer_updated(self, nbytes: int) -> None:
        if self._body is not None:
            self._pos += nbytes
            if self._pos == len(self._body):
                body, self._body = self._body, None
                self._finish(body)
            return
        self._held += nbytes
        scratch, start = self._scratch, 0
        while self._held - start >= 4:
            try:
                size = reply_size(bytes(scratch[start:start + 4]))
            except ValueError as e:   # BadReply: the stream is garbage
                self._held = 0
                self._finish(e)
                self.transport.close()
                return
            start += 4
            take = min(self._held - start, size)
            body = self._pool.take(size)
            body[:take] = scratch[start:start + take]
            start += take
            if take < size:   # the rest goes straight into the frame's own buffer
                self._body, self._pos = body, take
                break
            self._finish(body)
        rest = self._held - start
        if rest and start:
            scratch[:rest] = scratch[start:self._held]
        self._held = rest

    def _finish(self, item) -> None:
        self._done.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def connection_lost(self, exc) -> None:
        if self._body is None:
            got, expected = bytes(self._scratch[:self._held]), 4
        else:
            got, expected = struct.pack(">i", len(self._body)) + bytes(self._body[:self._pos]), 4 + len(self._body)
        if got or exc is None:   # cut mid-reply (a partial answer), or closed by the peer
            self._finish(asyncio.IncompleteReadError(got, expected))
        else:
            self._finish(exc)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def next_frame(self, timeout: float) -> bytearray | memoryview:
        """The next whole reply frame; asyncio.TimeoutError after `timeout` s. A timer on one
        future rather than asyncio.wait_for, which would run a task per reply."""
        loop = asyncio.get_running_loop()
        if self._drained is not None and not self._drained.done():
            await asyncio.wait_for(self._drained, timeout)
        if not self._done:
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        item = self._done.popleft()
        if isinstance(item, BaseException):
            raise item
        return item


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class AsyncConnection:
    """One Kafka connection: `await request(body, timeout)` gives the response entity or raises
    ExchangeFailed (a timed-out reply would desynchronise the stream, so the connection closes).
    `await call(encode, decode, timeout)` does the same with a caller's own codec."""

    def __init__(self, host: str, port: int, client_id: str, connect_timeout: float) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.connect_timeout = connect_timeout
        self._proto: _Frames | None = None
        self._lock = asyncio.Lock()
        self._corr = 0

    @property
    def connected(self) -> bool:
        return self._proto is not None and not self._proto.transport.is_closing()

    async def request(self, body: Any, timeout: float) -> Any:
        return await self.call(lambda corr, client_id: request_frame(body, corr, client_id),
                               lambda frame, corr: decode_reply(bytes(frame), body, corr), timeout)

    async def call(self, encode: Callable[[int, str], bytes], decode: Callable[[bytearray | memoryview, int], Any],
                   timeout: float) -> Any:
        """encode(correlation id, client id) -> the request frame (size prefix included);
        decode(reply frame without its size prefix, correlation id) -> the answer (raises
        ValueError or struct.error for a bad reply)."""
        async with self._lock:
            reused = self.connected
            try:
                return await self._request(encode, decode, timeout)
            except ExchangeFailed as e:
                # a kept connection whose peer died (a restarted service) fails on first use
                # without an answer: the request never reached a live peer, so ask again once on
                # a fresh connection
                if not (reused and e.no_answer):
                    raise
            return await self._request(encode, decode, timeout)

    async def _request(self, encode, decode, timeout: float) -> Any:
        try:
            if not self.connected:
                loop = asyncio.get_running_loop()
                _t, self._proto = await asyncio.wait_for(
                    loop.create_connection(_Frames, self.host, self.port), self.connect_timeout)
            self._corr = (self._corr + 1) & 0x7FFFFFFF
            corr = self._corr
            self._proto.transport.write(encode(corr, self.client_id))
            frame = await self._proto.next_frame(timeout)
            return decode(frame, corr)
        except asyncio.TimeoutError:
            self.close()
            raise ExchangeFailed(f"{self.host}:{self.port} did not answer within {timeout:.1f} s",
                                 timed_out=True) from None
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError, struct.error) as e:  # BadReply too
            self.close()
            detail = f"{type(e).__name__}: {e}"
            no_answer = isinstance(e, (ConnectionError, asyncio.IncompleteReadError)) and \
                not getattr(e, "partial", b"")
            raise ExchangeFailed(f"{self.host}:{self.port} is not available ({detail})", timed_out=False,
                                 no_answer=no_answer, detail=detail) from None
        except BaseException:  # cancelled mid-exchange: the stream is out of step
            self.close()
            raise

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
