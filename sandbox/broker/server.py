"""The broker's network side: asyncio sockets, framing, dispatch to handlers, in-order replies.

Like Kafka, one connection has one request in flight at a time, so replies keep request order.
Bad input closes only the offending connection, with one log line saying what and from where.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import socket
import time

from sandbox import lifecycle
from sandbox.lifecycle import serve_until_stopped, setup_logging  # noqa: F401  (setup_logging: re-exported)
from sandbox.coordinator.acls import ANONYMOUS
from sandbox.protocol import FrameError, frame_size
from sandbox.protocol.buffers import BufferPool

from .config import DEFAULT_LISTENER, BrokerConfig
from .file_reply import FileReply, discard as _discard, fetch_reply, sendfile_now
from .handlers import REGISTRY
from . import storage
from .storage import STORAGE_ERRNOS
from .sasl_gate import SaslGate, frame_api_key as _api_key
from .state import BrokerState, emit_event

log = logging.getLogger("sandbox.broker")
WRITABLE_KEYS = REGISTRY.writable_keys   # frames of these API keys are handed over as bytearrays


class ListenerBindError(OSError):
    """A listener's socket could not be bound; strerror says which listener and why, `where`
    names it ("listener NAME at HOST:PORT") for the sentence the user reads."""

    def __init__(self, errno_: int | None, message: str, where: str) -> None:
        super().__init__(errno_, message)
        self.where = where


class BrokerServer(lifecycle.Service):
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.state = BrokerState(config)
        # Produce requests of 64 KiB to 2 MiB are received into these (sandbox.protocol.buffers):
        # 8 cover a producer's 5 in flight and more; at most 16 MiB kept after a load
        self.frame_pool = BufferPool(8)
        self._servers: list[asyncio.base_events.Server] = []  # one per listener
        self._tasks: list[asyncio.Task] = []
        self._conns: set[Connection] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        t0 = time.monotonic()
        lifecycle.clear_stop_file(self.config.data_dir)
        listeners = self.config.endpoints()
        for lst in listeners:
            try:
                server = await asyncio.get_running_loop().create_server(
                    functools.partial(Connection, self, lst.name), lst.host, lst.port,
                    reuse_address=True, start_serving=False,
                )
            except OSError as e:
                for server in self._servers:
                    server.close()
                self._servers = []
                why = os.strerror(e.errno) if e.errno and e.errno > 0 else (e.strerror or str(e))
                raise ListenerBindError(e.errno, f"listener {lst.name} cannot bind {lst.host}:{lst.port} ({why})",
                                        f"listener {lst.name} at {lst.host}:{lst.port}") from e
            if lst.port == 0:
                lst.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        if not self.config.listeners:  # the implicit PLAINTEXT listener: keep --port 0 resolved
            self.config.port = listeners[0].port
            if self.config.sasl_port is not None:
                self.config.sasl_port = listeners[1].port
            for lst in listeners:
                await self._also_ipv6_loopback(lst)
        await self.state.open()
        for server in self._servers:
            await server.start_serving()
        cfg = self.config
        self._tasks = [asyncio.create_task(lifecycle.watch_stop_file(cfg.data_dir, self.request_stop, log))] + [
            asyncio.create_task(lifecycle.every(interval, fn, log, self._housekeeping_failed))
            for interval, fn in ((0.1, self._tick_groups),
                                 (cfg.retention_check_interval_ms / 1000, self.state.apply_retention),
                                 (cfg.offsets_retention_check_interval_ms / 1000, self._expire_offsets),
                                 (cfg.checkpoint_interval_ms / 1000, self.state.checkpoint),
                                 (cfg.cleaner_backoff_ms / 1000, self.state.compact),
                                 (1.0, self._flush_due),
                                 (1.0, self._probe_storage),
                                 (1.0, self.state.retry_creations),
                                 (1.0, self.state.retry_unopened),
                                 (30.0, self.frame_pool.release_if_idle),
                                 (0.5, self.state.replicas.tick),
                                 (cfg.transaction_abort_timed_out_interval_ms / 1000, self._tick_transactions))
        ]
        served = ", ".join(
            f"{lst.host}:{lst.port}" if not self.config.listeners else
            "{} {}:{} (advertised {}:{})".format(lst.name, lst.host, lst.port, *lst.advertised)
            for lst in listeners
        ) + "".join(f" and [::1]:{srv.sockets[0].getsockname()[1]}" for srv in self._servers[len(listeners):])
        log.info(
            "broker %d serving on %s (data %s, %d partitions, started in %.0f ms)",
            self.config.node_id, served, self.config.data_dir,
            len(self.state.partitions), (time.monotonic() - t0) * 1000,
        )
        emit_event("start", {"service": f"broker-{self.config.node_id}", "port": listeners[0].port})

    async def _also_ipv6_loopback(self, lst) -> None:
        """A broker on 127.0.0.1 also listens on [::1] (same port) when the machine has it: Node.js
        and .NET on Windows resolve `localhost` to ::1 first. It still advertises 127.0.0.1."""
        if lst.host != "127.0.0.1" or not socket.has_ipv6:
            return
        try:
            server = await asyncio.get_running_loop().create_server(
                functools.partial(Connection, self, lst.name), "::1", lst.port,
                reuse_address=True, start_serving=False)
        except OSError as e:   # no IPv6 loopback here, or another program has [::1]:port
            log.info("not listening on [::1]:%d as well (%s); clients must use 127.0.0.1", lst.port,
                     e.strerror or e)
            return
        self._servers.append(server)

    def _housekeeping_failed(self, fn, e: Exception) -> None:
        """A full or failing disk is one line (it is retried next time, and produce reports it);
        anything else is a bug worth its traceback."""
        name = getattr(fn, "__name__", fn)
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            log.warning("housekeeping task %s could not write: %s", name, e)
            storage.failed(self.state, self.config.data_dir, e)   # status says so; the probe clears it
        elif isinstance(e, PermissionError):   # Windows: a file another program holds for a while
            log.warning("housekeeping task %s put off (tried again next time): %s", name, e)
        else:
            log.exception("housekeeping task %s failed", name)

    async def _probe_storage(self) -> None:
        await storage.probe(self.state)

    def _tick_groups(self) -> None:
        if self.state.groups is not None:
            self.state.groups.expire()

    def _expire_offsets(self) -> None:
        """offsets.retention.minutes: committed offsets of groups that stopped using them (KIP-211)."""
        if self.state.groups is None:
            return
        retention_ms = self.config.offsets_retention_minutes * 60_000
        now_ms = int(self.state.clock() * 1000)   # the clock commit timestamps are taken from
        for group, n in self.state.groups.expire_offsets(now_ms, retention_ms).items():
            log.info("group %s: %d committed offset(s) expired (offsets.retention.minutes=%d)", group, n,
                     self.config.offsets_retention_minutes)
            emit_event("offsets-expired", {"group": group, "offsets": n,
                                           "retention_minutes": self.config.offsets_retention_minutes})

    async def _tick_transactions(self) -> None:
        if self.state.txns is not None:
            await self.state.txns.tick()

    def _flush_due(self) -> None:
        now_ms = int(time.time() * 1000)
        for plog in self.state.partitions.values():
            plog.housekeeping.flush(now_ms, if_due=True)
        self.state.checkpoint_if_moved()

    async def stop(self) -> None:
        await self.state.shut_down()   # leaderships handed over while clients can still be told
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.close()
        await lifecycle.cancel_and_wait(self._tasks)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        await self.state.close()
        if not self.state.stopped_unflushed:
            log.info("broker %d stopped cleanly (journal flushed)", self.config.node_id)
        emit_event("stop", {"service": f"broker-{self.config.node_id}"})

    # ---- connections -----------------------------------------------------------------------
    def _dispatch(self, frame: bytes, peer: str, listener: str = DEFAULT_LISTENER, principal: str = ANONYMOUS):
        """The encoded reply, None for no reply (acks=0), False to close the connection; for a
        handler that must wait (Fetch long-poll, group joins, admin calls), a coroutine giving
        the same. Synchronous handlers (Produce, Metadata, ...) are answered right away."""
        out = REGISTRY.dispatch(frame, self.state, peer, listener, principal)
        if type(out) is list:
            return fetch_reply(out)
        if asyncio.iscoroutine(out):
            return self._finish(out)
        return out

    @staticmethod
    async def _finish(answer):
        """An awaited answer; parts are made a reply (records read, or file runs pinned) before
        any other await lets the log change."""
        out = await answer
        return fetch_reply(out) if type(out) is list else out


PRODUCE_KEY = 0


async def _answered(reply):
    """A reply ready now, queued behind replies still to finish (Connection._push)."""
    return reply


class Connection(SaslGate, asyncio.BufferedProtocol):
    """One client connection. The transport reads straight into our buffers (no StreamReader
    copies): small frames are parsed out of a reused 64 KiB buffer, a larger frame is read into a
    buffer the request then owns (Produce stamps offsets into it in place): one of the broker's
    kept buffers for a Produce request while one is free, else a bytearray of its own.
    Requests are answered one at a time, in order, by a task per connection; the one exception:
    Produce requests behind an acks=all Produce that waits for its replicas are appended at once
    and wait alongside it (replies still in order), so a producer's in-flight requests do not
    each pay a replication round trip in turn."""

    SMALL = 1 << 16
    QUEUE_HIGH = 32 << 20   # stop reading while this many request bytes wait to be handled
    QUEUE_LOW = 8 << 20

    def __init__(self, server: "BrokerServer", listener: str) -> None:
        self.server, self.listener = server, listener
        self.max_frame = server.config.max_request_bytes
        self.buf = bytearray(self.SMALL)
        self.view = memoryview(self.buf)
        self.start = self.end = 0            # unparsed bytes are buf[start:end]
        self.big: bytearray | memoryview | None = None   # a large frame being filled
        self.big_view: memoryview | None = None
        self.big_filled = 0
        self.frames: collections.deque = collections.deque()   # frames; None = close here
        self.queued = 0
        self.reading_paused = False
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._wakeup: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None
        self._writing_paused = False
        self._task: asyncio.Task | None = None
        self.busy = False        # the task is answering a request (replies must stay in order)
        self.pipelining = False  # only Produce requests are queued, each already appended
        self._out: list = []     # replies held to be sent together (see _send_soon)
        self._flush_handle: asyncio.Handle | None = None
        self._init_sasl(server, listener)

    # ---- asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self.server._conns.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.big is not None:
            return self.big_view[self.big_filled:]
        if self.end == len(self.buf):   # full: move the unparsed tail to the front
            n = self.end - self.start
            self.buf[:n] = self.view[self.start:self.end]
            self.start, self.end = 0, n
        return self.view[self.end:]

    def buffer_updated(self, nbytes: int) -> None:
        if self.big is not None:
            self.big_filled += nbytes
            if self.big_filled == len(self.big):
                frame, self.big, self.big_view = self.big, None, None
                self._push(frame)
            return
        self.end += nbytes
        self._parse()

    def eof_received(self) -> bool:
        self._push(None)
        return False

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.big = self.big_view = None   # a kept buffer half filled is free again
        self.server._conns.discard(self)
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # ---- framing
    def _parse(self) -> None:
        while True:
            avail = self.end - self.start
            if avail < 4:
                break
            try:
                size = frame_size(self.view[self.start:self.start + 4], self.max_frame)
            except FrameError as e:
                log.warning("closing connection from %s: %s", self.peer, e)
                self._push(None)
                self.transport.pause_reading()
                self.start = self.end = 0
                return
            if avail - 4 >= size:
                body = self.view[self.start + 4:self.start + 4 + size]
                # a request whose handler writes through views of its frame (Produce stamps offsets)
                # gets a bytearray; kio's decoder wants read-only bytes
                self._push(bytearray(body) if size >= 2 and (body[0] << 8 | body[1]) in WRITABLE_KEYS
                           else bytes(body))
                self.start += 4 + size
                continue
            if size + 4 > len(self.buf):   # a large frame: read the rest straight into its own buffer
                have = avail - 4
                # a Produce request (hundreds of KB; several wait at once for acks=all) into one
                # of the broker's kept buffers if one is free: a fresh one cost the leader a page
                # fault and the kernel's zeroing per 4 KiB (perf, RF 3 acks=all: 46-71 of the leader's
                # 502-517 samples net of writes; 20-22 of 345-478 after)
                self.big = self.server.frame_pool.take(size) if have >= 2 and \
                    _api_key(self.view[self.start + 4:self.start + 6]) == PRODUCE_KEY else bytearray(size)
                self.big[:have] = self.view[self.start + 4:self.end]
                self.big_view, self.big_filled = memoryview(self.big), have
                self.start = self.end = 0
            break
        if self.start == self.end:
            self.start = self.end = 0

    def _push(self, frame: bytes | bytearray | None) -> None:
        ready = frame is not None and not self._writing_paused and not self.closed
        if ready and not self.busy and not self.frames:
            # nothing ahead of it: answer now if its handler needs no waiting (one loop pass
            # instead of waking the connection's task: Produce, Metadata, offsets...)
            out = self._dispatch(frame)
            if not asyncio.iscoroutine(out) and not isinstance(out, FileReply):
                if out is False:
                    self._push(None)
                elif out:
                    self._send(out)
                return
            self.frames.append(out)   # a reply still to finish, in order
            # an acks=all Produce waiting for its replicas: the Produce requests right behind it
            # are appended now (in arrival order) and wait alongside, their replies still in order
            self.pipelining = asyncio.iscoroutine(out) and _api_key(frame) == PRODUCE_KEY and \
                (self.sasl is None or self.sasl.principal is not None)
            self._wake()
            return
        if ready and self.pipelining and _api_key(frame) == PRODUCE_KEY:
            out = self._dispatch(frame)
            if out is False:
                self.frames.append(None)
            elif out is not None:     # None: acks=0, no reply
                # answered at once (acks=1, refused, an ISR of one): its reply waits its turn
                # wrapped, since bare bytes in `frames` are a request still to dispatch
                self.frames.append(out if asyncio.iscoroutine(out) else _answered(out))
            self._wake()
            return
        self.pipelining = False      # anything else waits its turn, and so does every request behind it
        self.frames.append(frame)
        if frame is not None:
            self.queued += len(frame)
            if self.queued > self.QUEUE_HIGH and not self.reading_paused and not self.closed:
                self.reading_paused = True
                self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # ---- requests, in order
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self.frames:
                    if self.closed:
                        return
                    self._wakeup = loop.create_future()
                    await self._wakeup
                frame = self.frames.popleft()
                if frame is None or self.closed:
                    _discard(frame)
                    return
                self.busy = True
                # a reply _push started (a coroutine, a FileReply), or else a request frame, whatever
                # buffer holds it (bytes, bytearray, or a memoryview of a kept buffer)
                if asyncio.iscoroutine(frame) or isinstance(frame, FileReply):
                    out = frame
                else:
                    self.queued -= len(frame)
                    if self.reading_paused and self.queued < self.QUEUE_LOW:
                        self.reading_paused = False
                        self.transport.resume_reading()
                    out = self._dispatch(frame)
                if asyncio.iscoroutine(out):
                    out = await out
                if out is False:
                    return
                if isinstance(out, FileReply):
                    if not await self._send_file_reply(out):
                        return
                elif out and not self.closed:
                    if self.frames:   # more answers may be ready in this same pass: one send for all
                        self._send_soon(out)
                    else:
                        self._send(out)
                    if self._writing_paused:
                        self._drained = loop.create_future()
                        await self._drained
                self.busy = False
        except asyncio.CancelledError:
            raise
        except (ConnectionError, BrokenPipeError):
            pass
        except Exception:
            log.exception("connection from %s failed", self.peer)
        finally:
            while self.frames:
                _discard(self.frames.popleft())
            self.close()

    # ---- sending, in order
    def _send(self, out) -> None:
        """One reply now, after any held ones (a view: the transport slices it without copying)."""
        if self._out:
            self._out.append(out)
            self._flush()
        else:
            self.transport.write(memoryview(out))

    def _send_soon(self, out) -> None:
        """Hold a reply until this pass of the event loop ends: Produce requests pipelined behind
        an acks=all one are completed together by one high-watermark move, and their replies then
        go out in one send instead of a system call (and a client wake-up) each."""
        self._out.append(out)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._out:
            out, self._out = self._out, []
            if not self.transport.is_closing():
                self.transport.write(b"".join(out) if len(out) > 1 else memoryview(out[0]))

    async def _send_file_reply(self, reply: FileReply) -> bool:
        """Buffers through the transport, file runs by sendfile; False (close) on a short run."""
        loop = asyncio.get_running_loop()
        self._flush()
        try:
            for item in reply.items:
                if self.closed:
                    return False
                if not isinstance(item, tuple):
                    self.transport.write(item)
                    continue
                fd, pos, n = item
                sent = sendfile_now(self.transport, fd, pos, n)
                if sent < n:   # the socket is full: asyncio waits until it takes the rest
                    with open(fd, "rb", buffering=0, closefd=False) as f:
                        sent += await loop.sendfile(self.transport, f, pos + sent, n - sent)
                if sent != n:
                    log.warning("closing connection from %s: a log segment shrank while it was sent "
                                "(%d of %d bytes)", self.peer, sent, n)
                    return False
            return True
        finally:
            reply.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush()   # replies held for one send go before the close
            self.transport.close()


async def run_broker(config: BrokerConfig) -> int:
    """Run until SIGINT/SIGTERM/SIGBREAK (or a stop file); returns the process exit code."""
    return await serve_until_stopped(BrokerServer(config))
